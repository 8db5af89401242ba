// Test environment, set before lib/config.ts reads it: in-memory stores, a free port, quiet logs.
process.env.NODE_ENV = "test";
process.env.PORT = "0";
process.env.LOG_LEVEL = process.env.TEST_LOG_LEVEL || "error";
process.env.JWT_SECRET = "test-secret";
process.env.ADMIN_EMAIL = "admin@moleshop.test";
process.env.ADMIN_PASSWORD = "admin-password";
