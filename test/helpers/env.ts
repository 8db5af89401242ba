// Test environment, set before platform/config.ts reads it: in-memory stores, a free port, quiet logs.
import { runPrefix, serverOf } from "./database";

process.env.NODE_ENV = "test";
process.env.PORT = "0";
process.env.LOG_LEVEL = process.env.TEST_LOG_LEVEL || "error";
process.env.JWT_SECRET = "test-secret";
process.env.ADMIN_EMAIL = "admin@moleshop.test";
process.env.ADMIN_PASSWORD = "admin-password";
// A provider that does not answer within 1 s is asked for the charge by its key (keeps timeout tests short).
process.env.PAYMENT_TIMEOUT_MS = "1000";

// On the MongoDB path (MONGO_URI, or the stand-in: see jest.config.js) each test file
// works in a database of its own, which its brokers drop when they stop, and which the
// nodes it starts as processes share (test/helpers/process.ts passes MONGO_URI on).
// Named after the run, so that global-teardown drops every database of the run.
if (process.env.MONGO_URI) {
	const query = process.env.MONGO_URI.split("?")[1];
	const database = `${runPrefix()}${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
	process.env.MONGO_URI = `${serverOf(process.env.MONGO_URI)}/${database}${query ? `?${query}` : ""}`;
}
