"""Login through an OpenID Connect identity provider (in Swedish healthcare one backed by SITHS eID).

The authorization-code flow with PKCE (S256), a state and a nonce, by Authlib's Starlette client: it reads
the issuer's discovery document, keeps state, nonce and code verifier in the session, exchanges the code
and checks the ID token (signature against the issuer's JWKS, issuer, audience, expiry, nonce). The account
is named by a claim (HMC_CONSOLE_OIDC_NAME_CLAIM) and its roles come from another (HMC_CONSOLE_OIDC_ROLES_CLAIM),
mapped by HMC_CONSOLE_OIDC_ROLE_MAP; someone whose claims give no console role is refused.

The IdP sends the browser back with a top-level GET from its own site; a SameSite=Strict cookie would not
come along, so with OIDC on the session cookie is SameSite=Lax (cross-site POSTs still carry no cookie, and
every change needs the CSRF token anyway).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.starlette_client import OAuth
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from broker.config import ConfigurationError, Settings
from console import accounts
from console import operations as ops
from console.accounts import AccountError, LoginRefused

CLIENT = "idp"


def role_map(spec: str) -> dict[str, str]:
    """`hmc-operators=operator, hmc-viewers=viewer` -> {IdP value: console role}; each role checked."""
    out: dict[str, str] = {}
    for item in filter(None, (i.strip() for i in spec.split(","))):
        value, sep, role = item.partition("=")
        if not sep or not value.strip():
            raise ConfigurationError(f"HMC_CONSOLE_OIDC_ROLE_MAP: {item!r} is not IDP-VALUE=ROLE")
        try:
            (out[value.strip()],) = accounts.checked_roles([role])
        except AccountError as e:
            raise ConfigurationError(f"HMC_CONSOLE_OIDC_ROLE_MAP: {e}") from None
    return out


def roles_of(claims: dict[str, Any], claim: str, mapping: dict[str, str]) -> list[str]:
    """The console roles the claims give: the claim's values (a list, or one string, or space-separated), each
    mapped (with no mapping: the values that are role names themselves)."""
    raw = claims.get(claim)
    values: Iterable[Any] = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else ()
    out: set[str] = set()
    for value in map(str, values):
        if mapping:
            if value in mapping:
                out.add(mapping[value])
            continue
        try:
            out.update(accounts.checked_roles([value]))
        except AccountError:
            continue  # a group of the IdP's that means nothing here
    return sorted(out)


class SingleSignOn:
    """The console's OpenID Connect client, configured from the settings."""

    def __init__(self, settings: Settings, client_secret: str | None) -> None:
        if not (settings.console_oidc_issuer and settings.console_oidc_client_id):
            raise ConfigurationError("OpenID Connect needs HMC_CONSOLE_OIDC_ISSUER and HMC_CONSOLE_OIDC_CLIENT_ID")
        self.settings = settings
        self.mapping = role_map(settings.console_oidc_role_map)
        self.oauth = OAuth()
        self.oauth.register(
            CLIENT,
            client_id=settings.console_oidc_client_id,
            client_secret=client_secret,
            server_metadata_url=f"{settings.console_oidc_issuer.rstrip('/')}/.well-known/openid-configuration",
            client_kwargs={"scope": "openid profile", "code_challenge_method": "S256"},
        )

    @property
    def client(self) -> Any:
        return self.oauth.create_client(CLIENT)

    async def start(self, request: Request) -> Response:
        redirect_uri = str(request.url_for("oidc_callback"))
        response: Response = await self.client.authorize_redirect(request, redirect_uri)
        return response

    async def finish(self, request: Request) -> Response:
        from console.app import Console  # the app module imports this one

        console: Console = request.app.state.console
        try:
            token = await self.client.authorize_access_token(request)
        except OAuthError as e:
            return console.render(request, "login.html", 401, error=f"the identity provider's answer: {e.error}")
        claims = dict(token.get("userinfo") or {})
        name = str(claims.get(self.settings.console_oidc_name_claim) or claims.get("sub") or "")
        roles = roles_of(claims, self.settings.console_oidc_roles_claim, self.mapping)
        with console.sessions() as session:
            try:
                if not roles:
                    raise LoginRefused("your identity gives no role in this console: ask for one")
                identity = accounts.single_sign_on(session, name, roles, console.dormant_after)
            except (LoginRefused, AccountError) as e:
                session.commit()
                ops.record(session, accounts.Identity(name[:100] or "?", frozenset()), "login-refused", str(e),
                           {"via": "oidc"})  # fmt: skip
                return console.render(request, "login.html", 401, error=str(e))
            session.commit()
            ops.record(session, identity, "login", "console login", {"roles": sorted(identity.roles), "via": "oidc"})
        request.session.clear()
        request.session["user"] = identity.name
        return RedirectResponse("/flow", status_code=303)
