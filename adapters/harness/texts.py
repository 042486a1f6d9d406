"""Free texts as prescribers, technicians and SESAM2 write them; short lists are enough for realism."""

from __future__ import annotations

from broker.model.codes import CancellationReason, DelayReason, FaultSubject, WorkOrderKind

LINE_COMMENTS = (
    "Sittbredd 45 cm",
    "Vänsterhänt brukare",
    "Ska provas ut med arbetsterapeut",
    "Ersätter tidigare hjälpmedel",
    "Brukaren väger ca 95 kg",
)
ORDER_NOTES = (
    "Patienten skrivs ut från sjukhus inom kort, hjälpmedlen behövs på plats före hemkomst.",
    "Ring anhörig före leverans.",
    "Leverans helst efter kl 10.",
    "Trappa utan hiss, två personer behövs vid leverans.",
)
DELIVERY_INSTRUCTIONS = ("Portkod 4711", "Ring på hos grannen vid frånvaro", "1 tr, hiss finns", "Nyckel i nyckelgömma")
WORK_ORDER_DESCRIPTIONS: dict[WorkOrderKind, tuple[str, ...]] = {
    WorkOrderKind.CORRECTIVE_MAINTENANCE: (
        "Sängen går inte att höja, handkontrollen svarar inte.",
        "Bromsen på rollatorn tar dåligt på vänster sida.",
        "Elrullstolen laddar inte, laddaren blinkar rött.",
    ),
    WorkOrderKind.ADAPTATION: ("Höj sitthöjden 3 cm.", "Montera förlängda armstöd.", "Justera ryggvinkeln."),
    WorkOrderKind.SPECIAL_ADAPTATION: (
        "Specialanpassat sittstöd efter gjutning, se bifogat underlag.",
        "Manöverbox flyttas till vänster sida, brukaren har nedsatt funktion i höger hand.",
    ),
    WorkOrderKind.ASSEMBLY: ("Montera grindskydd och tippskydd.", "Montering av korg och stödben."),
    WorkOrderKind.INSTALLATION: (
        "Installation av taklyft i sovrum, skena 3 m.",
        "Installation av vårdsäng, gammal säng bärs ut.",
    ),
    WorkOrderKind.CONSULTATION: (
        "Konsultation om lämplig lyft och sele inför utskrivning.",
        "Bedömning av bostadens framkomlighet för elrullstol.",
    ),
}
WORK_ORDER_ACTIONS: dict[WorkOrderKind, str] = {
    WorkOrderKind.CORRECTIVE_MAINTENANCE: "Felsökt och åtgärdat, komponent bytt, funktionskontroll utan anmärkning.",
    WorkOrderKind.ADAPTATION: "Anpassning utförd enligt beställning, provad med brukaren.",
    WorkOrderKind.SPECIAL_ADAPTATION: "Specialanpassning utförd och dokumenterad, CE-märkning enligt egentillverkning.",
    WorkOrderKind.ASSEMBLY: "Monterat enligt tillverkarens anvisning.",
    WorkOrderKind.INSTALLATION: "Installerat och provlyft utfört, brukare och personal instruerade.",
    WorkOrderKind.CONSULTATION: "Konsultation genomförd, rekommendation skickad till förskrivaren.",
}
FAULT_DESCRIPTIONS: dict[FaultSubject, tuple[str, ...]] = {
    FaultSubject.PRODUCT: (
        "Handkontrollen till sängen har glapp i kabeln.",
        "Sprickor i sitsen efter kort tids användning.",
        "Batteriet håller bara en halv dag.",
    ),
    FaultSubject.SERVICE: (
        "Leveransen kom en dag för sent och utan avisering.",
        "Hämtningen blev inte av trots bokad tid.",
    ),
}
FAULT_ANSWERS: dict[FaultSubject, str] = {
    FaultSubject.PRODUCT: "Tack för rapporten. Produkten byts ut och ärendet är anmält till leverantören.",
    FaultSubject.SERVICE: "Tack för synpunkten. Vi har gått igenom rutinen med vår transportör.",
}
REFERRAL_SERVICES = (
    "Ortopediska inlägg",
    "Ortos, handled",
    "Kompressionsstrumpor, utprovning",
    "Protes underben, justering",
    "Korsett, utprovning",
)
CLINICAL_INFORMATION = (
    "Diabetes typ 2 med neuropati, tryckmärke under MTP I höger fot.",
    "Reumatoid artrit, smärta och instabilitet i handleden.",
    "Lymfödem efter operation, omfång ökat 4 cm på tre veckor.",
    "Amputerad 2019, stumpen har minskat i volym, protesen glappar.",
)
OT_CLINICS = (
    "Ortopedteknik, Akademiska sjukhuset",
    "Ortopedtekniska mottagningen, Lund",
    "Ortopedteknik Halmstad",
)
# SESAM2's answer to a referral, by whether it was acute.
REFERRAL_ANSWERS: dict[bool, str] = {
    True: "Akut remiss mottagen: {service}. Patienten ges tid nästa vardag hos {clinic}; kallelse skickas.",
    False: "Remissen är mottagen och bedömd: {service}. Patienten kallas till {clinic}.",
}
CANCELLATION_NOTES: dict[CancellationReason, str] = {
    CancellationReason.ARTICLE_DISCONTINUED: "Artikeln har utgått ur sortimentet, välj ersättningsartikel.",
    CancellationReason.NOT_DELIVERABLE: "Kan inte levereras inom avtalad tid, lägg ny order.",
    CancellationReason.DUPLICATE_ORDER: "Dubbelregistrerad order.",
    CancellationReason.CUSTOMER_REQUEST: "Makulerad på kundens begäran.",
    CancellationReason.PATIENT_DECEASED: "Makulerad.",
    CancellationReason.OTHER: "Kontakta kundtjänst.",
}
DELAY_NOTES: dict[DelayReason, str] = {
    DelayReason.SUPPLIER_DELAY: "Försenad leverans från leverantör.",
    DelayReason.OUT_OF_STOCK: "Restnoterad, nytt lagersaldo väntas.",
    DelayReason.TRANSPORT: "Transporten försenad.",
    DelayReason.ADAPTATION_NEEDED: "Hjälpmedlet behöver anpassas före leverans.",
    DelayReason.OTHER: "Ny leveransdag meddelas.",
}

# Why a customer system withdraws an order it sent (OrderWithdrawal, customer dialect 1.1).
WITHDRAWAL_NOTES = (
    "Patienten har fått hjälpmedlet via kommunen; ordern behövs inte längre.",
    "Beställd på fel patient, ny order skickas.",
    "Patienten har avlidit.",
    "Behovet har upphört efter utskrivning.",
)
