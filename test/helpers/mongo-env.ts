// The "mongodb" project (jest.config.js): the MongoDB of MONGO_URI, or else the stand-in
// that global-setup started. Runs before env.ts, which gives each test file its own database,
// and before any service is loaded, so that every mongoose operation is checked (mongo-translation.ts).
import { recordTranslations } from "./mongo-translation";

if (!process.env.MONGO_URI) {
	if (!process.env.MONGO_STANDIN_URI)
		throw new Error("Neither MONGO_URI nor the MongoDB stand-in (test/helpers/global-setup.ts) is there");
	process.env.MONGO_URI = process.env.MONGO_STANDIN_URI;
}
recordTranslations();
