/** @type {import("jest").Config} */
module.exports = {
	testEnvironment: "node",
	transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
	testMatch: ["<rootDir>/test/**/*.spec.ts"],
	setupFiles: ["<rootDir>/test/helpers/env.ts"],
	globalSetup: "<rootDir>/test/helpers/global-setup.ts",
	testTimeout: 60_000,
};
