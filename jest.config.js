/**
 * Two runs of the same suite, each a Jest project:
 * - "nedb": the embedded store, as `npm start` runs without MONGO_URI;
 * - "mongodb": the MongoDB path (mongoose and moleculer-db-adapter-mongoose). Against the
 *   MongoDB of MONGO_URI when it is set (then it is the only project), otherwise against
 *   the MongoDB stand-in that global-setup starts (test/helpers/mongo-standin.ts).
 * Each test file gets a database of its own (test/helpers/env.ts).
 */
const base = {
	testEnvironment: "node",
	transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
	testMatch: ["<rootDir>/test/**/*.spec.ts"],
};

const nedb = { ...base, displayName: "nedb", setupFiles: ["<rootDir>/test/helpers/env.ts"] };
const mongodb = {
	...base,
	displayName: "mongodb",
	setupFiles: ["<rootDir>/test/helpers/mongo-env.ts", "<rootDir>/test/helpers/env.ts"],
	// Every filter and update the suite issues, checked against what mongoose cast it to.
	setupFilesAfterEnv: ["<rootDir>/test/helpers/mongo-after-env.ts"],
};

/** @type {import("jest").Config} */
module.exports = {
	projects: process.env.MONGO_URI ? [mongodb] : [nedb, mongodb],
	globalSetup: "<rootDir>/test/helpers/global-setup.ts",
	globalTeardown: "<rootDir>/test/helpers/global-teardown.ts",
	testTimeout: 60_000,
};
