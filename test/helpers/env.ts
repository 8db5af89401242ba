// Test environment, set before lib/config.ts reads it: in-memory stores, a free port, quiet logs.
process.env.NODE_ENV = "test";
process.env.PORT = "0";
process.env.LOG_LEVEL = process.env.TEST_LOG_LEVEL || "error";
process.env.JWT_SECRET = "test-secret";
process.env.ADMIN_EMAIL = "admin@moleshop.test";
process.env.ADMIN_PASSWORD = "admin-password";
// A provider that does not answer within 1 s is asked for the charge by its key (keeps timeout tests short).
process.env.PAYMENT_TIMEOUT_MS = "1000";

// With MONGO_URI the whole suite runs against that MongoDB: each test file
// in a database of its own, dropped when the file's shop stops.
if (process.env.MONGO_URI) {
	const [base, query] = process.env.MONGO_URI.split("?");
	const server = base.match(/^(mongodb(?:\+srv)?:\/\/[^/]+)/)?.[1];
	if (!server) throw new Error(`MONGO_URI is not a mongodb:// URI: ${process.env.MONGO_URI}`);
	const database = `moleshop_test_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
	process.env.MONGO_URI = `${server}/${database}${query ? `?${query}` : ""}`;
}
