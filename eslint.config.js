// ESLint (flat config): typescript-eslint's recommended rules over the whole project;
// formatting is Prettier's (.prettierrc.json), so eslint-config-prettier turns off what would clash.
const eslint = require("@eslint/js");
const tseslint = require("typescript-eslint");
const prettier = require("eslint-config-prettier");
const globals = require("globals");

module.exports = tseslint.config(
	{ ignores: ["dist/", "node_modules/", ".tools/", "data/", "coverage/"] },
	eslint.configs.recommended,
	...tseslint.configs.recommended,
	prettier,
	{
		languageOptions: { globals: { ...globals.node } },
		rules: {
			// `_name` marks what is unused on purpose (a destructured field left out, a required parameter).
			"@typescript-eslint/no-unused-vars": [
				"error",
				{ argsIgnorePattern: "^_", varsIgnorePattern: "^_", ignoreRestSiblings: true },
			],
		},
	},
	{
		files: ["**/*.js"],
		rules: { "@typescript-eslint/no-require-imports": "off" },
	},
	{
		// Tests read answers loosely (`broker.call<any, any>`) and patch services to inject faults.
		files: ["test/**/*.ts"],
		languageOptions: { globals: { ...globals.jest } },
		rules: { "@typescript-eslint/no-explicit-any": "off" },
	},
);
