// Preloaded into node (NODE_OPTIONS=--require) by tests/support/tools.py: any attempt to open a connection or
// resolve a name fails loudly, so a tool that phones home (analytics, update checks) is caught by the test.
const net = require("net");
const dns = require("dns");
const refuse = (what) =>
  function () {
    const error = new Error(`HMC_NO_NETWORK: ${what} refused in tests`);
    process.stderr.write(error.message + "\n");
    throw error;
  };
net.Socket.prototype.connect = refuse("net.Socket.connect");
dns.lookup = refuse("dns.lookup");
dns.resolve = refuse("dns.resolve");
