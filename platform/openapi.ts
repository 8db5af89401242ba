/**
 * The OpenAPI 3 document of the REST contract, generated from what the gateway actually
 * routes: moleculer-web's alias table (`api.listAliases`), each action's fastest-validator
 * `params` and its access level (`auth`). Nothing here repeats a parameter list by hand;
 * the hand-written part (summaries, success shapes, examples) is passed in as `docs`.
 *
 * fastest-validator's rules become JSON Schema (the subset OpenAPI 3.0 understands). In a
 * cluster the gateway sees remote actions' params as they came in the INFO packet, where a
 * RegExp `pattern` has become `{}`: such a pattern is left out rather than guessed.
 */

/** A JSON Schema object, as OpenAPI 3.0 uses it. */
export type JsonSchema = Record<string, unknown>;

/** One row of moleculer-web's `listAliases({ withActionSchema: true })`. */
export interface RouteAlias {
	actionName: string | null;
	fullPath: string;
	methods: string;
	action?: { params?: Record<string, unknown>; auth?: string; description?: string };
}

/** The hand-written side of one operation: everything the schemas cannot say. */
export interface OperationDoc {
	summary: string;
	description?: string;
	/** The success status (200 unless said). */
	status?: number;
	/** The success body's shape (none for 204). */
	response?: JsonSchema;
	/** Refusals beyond the ones every operation can answer, status → what it means. */
	refusals?: Record<number, string>;
	/** Example request: the path, query and body parameters the action takes. */
	example?: Record<string, unknown>;
}

/** Function aliases (no action behind them) the contract documents by hand. */
export interface FunctionRouteDoc extends OperationDoc {
	method: string;
	path: string;
}

export interface OpenApiInput {
	title: string;
	version: string;
	description?: string;
	aliases: RouteAlias[];
	/** Per action name. */
	docs: Record<string, OperationDoc>;
	/** Function aliases worth documenting (health, readiness, the document itself). */
	functionRoutes?: FunctionRouteDoc[];
}

const STATUS_TEXT: Record<number, string> = {
	400: "Malformed request (bad JSON, a forbidden key, a query string on a write)",
	401: "No token, or an invalid or expired one",
	403: "The caller's role may not do this",
	404: "Not found",
	413: "Request body over BODY_LIMIT",
	415: "A body in an encoding the gateway cannot read",
	422: "Validation failed: the failing fields are in `data`",
	500: "Something went wrong (nothing more is said)",
	503: "No node can serve this now (see Retry-After)",
	504: "The request timed out",
};

const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

/** `"string|min:1|optional"` → `{ type: "string", min: 1, optional: true }`. */
function parseShorthand(rule: string): Record<string, unknown> {
	const [type, ...parts] = rule.split("|");
	const out: Record<string, unknown> = { type };
	for (const part of parts) {
		const [key, value] = part.split(":");
		if (value === undefined) out[key] = true;
		else if (value === "true" || value === "false") out[key] = value === "true";
		else out[key] = Number.isNaN(Number(value)) ? value : Number(value);
	}
	return out;
}

/** A fastest-validator rule in any of its forms, as an object rule. */
function normalize(rule: unknown): Record<string, unknown> {
	if (typeof rule === "string") return parseShorthand(rule);
	if (Array.isArray(rule)) return { type: "multi", rules: rule };
	if (rule && typeof rule === "object") return rule as Record<string, unknown>;
	return { type: "any" };
}

/** Whether the rule may be left out. */
export function isOptional(rule: unknown): boolean {
	const r = normalize(rule);
	return r.optional === true || "default" in r;
}

function patternSource(pattern: unknown): string | undefined {
	if (pattern instanceof RegExp) return pattern.source;
	if (typeof pattern === "string") return pattern;
	return undefined; // a RegExp that went through JSON: unknown
}

/** The JSON Schema of an object rule's `props` (and whether extra keys are refused). */
export function propsSchema(props: Record<string, unknown>, strict: boolean): JsonSchema {
	const properties: Record<string, JsonSchema> = {};
	const required: string[] = [];
	for (const [key, rule] of Object.entries(props)) {
		if (key.startsWith("$$")) continue;
		properties[key] = ruleSchema(rule);
		if (!isOptional(rule)) required.push(key);
	}
	return {
		type: "object",
		properties,
		...(required.length ? { required } : {}),
		...(strict ? { additionalProperties: false } : {}),
	};
}

/** One fastest-validator rule → JSON Schema. */
export function ruleSchema(input: unknown): JsonSchema {
	const rule = normalize(input);
	const out: JsonSchema = {};
	switch (rule.type) {
		case "string": {
			out.type = "string";
			if (typeof rule.min === "number") out.minLength = rule.min;
			else if (rule.empty === false) out.minLength = 1;
			if (typeof rule.max === "number") out.maxLength = rule.max;
			if (typeof rule.length === "number") out.minLength = out.maxLength = rule.length;
			const pattern = patternSource(rule.pattern);
			if (pattern) out.pattern = pattern;
			if (Array.isArray(rule.enum)) out.enum = rule.enum;
			break;
		}
		case "email":
			Object.assign(out, { type: "string", format: "email" });
			if (typeof rule.max === "number") out.maxLength = rule.max;
			break;
		case "uuid":
			Object.assign(out, { type: "string", format: "uuid" });
			break;
		case "url":
			Object.assign(out, { type: "string", format: "uri" });
			break;
		case "date":
			Object.assign(out, { type: "string", format: "date-time" });
			break;
		case "number":
			out.type = rule.integer ? "integer" : "number";
			if (typeof rule.min === "number") out.minimum = rule.min;
			if (typeof rule.max === "number") out.maximum = rule.max;
			if (rule.positive) Object.assign(out, { minimum: 0, exclusiveMinimum: true });
			break;
		case "boolean":
			out.type = "boolean";
			break;
		case "enum":
			out.enum = rule.values;
			break;
		case "equal":
			out.enum = [rule.value];
			break;
		case "object": {
			const props = (rule.props ?? rule.properties) as Record<string, unknown> | undefined;
			if (props) Object.assign(out, propsSchema(props, rule.strict === true || rule.strict === "remove"));
			else out.type = "object";
			break;
		}
		case "array":
			out.type = "array";
			if (rule.items !== undefined) out.items = ruleSchema(rule.items);
			if (typeof rule.min === "number") out.minItems = rule.min;
			if (typeof rule.max === "number") out.maxItems = rule.max;
			if (typeof rule.length === "number") out.minItems = out.maxItems = rule.length;
			if (rule.unique) out.uniqueItems = true;
			break;
		case "multi":
			out.oneOf = (rule.rules as unknown[]).map(ruleSchema);
			break;
		default:
			break; // any, custom, …: no constraint the document can state
	}
	if ("default" in rule && typeof rule.default !== "function") out.default = rule.default;
	if (rule.nullable) out.nullable = true;
	return out;
}

/** The error body every refusal and failure answers with (services/api/api.service.ts, onError). */
export const ERROR_SCHEMA: JsonSchema = {
	type: "object",
	required: ["name", "message", "code"],
	properties: {
		name: { type: "string" },
		message: { type: "string" },
		code: { type: "integer" },
		type: { type: "string" },
		data: {},
	},
};

/** `/api/v1/orders/:id/cancel` → `/api/v1/orders/{id}/cancel` and `["id"]`. */
export function pathTemplate(fullPath: string): { path: string; names: string[] } {
	const names: string[] = [];
	const path = fullPath.replace(/:([A-Za-z0-9_]+)\??/g, (_, name: string) => {
		names.push(name);
		return `{${name}}`;
	});
	return { path, names };
}

function errorResponse(description: string) {
	return { description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };
}

function responses(method: string, access: string, hasParams: boolean, hasPath: boolean, doc: OperationDoc) {
	const status = doc.status ?? 200;
	const out: Record<string, unknown> = {
		[status]:
			status === 204 || !doc.response
				? { description: doc.summary }
				: { description: doc.summary, content: { "application/json": { schema: doc.response } } },
	};
	const codes = new Set<number>([400, 500, 503, 504]);
	if (hasParams) codes.add(422);
	if (BODY_METHODS.has(method)) [413, 415].forEach(c => codes.add(c));
	if (access !== "public") codes.add(401);
	if (access === "admin") codes.add(403);
	if (hasPath) codes.add(404);
	for (const code of codes) out[code] = errorResponse(STATUS_TEXT[code]);
	for (const [code, text] of Object.entries(doc.refusals ?? {})) out[code] = errorResponse(text);
	return out;
}

/** One operation from an action alias. */
function operation(method: string, alias: RouteAlias, doc: OperationDoc, pathNames: string[]) {
	const params = alias.action?.params ?? {};
	const access = alias.action?.auth ?? "admin"; // as the gateway's authorize does
	const strict = params.$$strict === true || params.$$strict === "remove";
	const fields = Object.fromEntries(Object.entries(params).filter(([k]) => !k.startsWith("$$")));
	const rest = Object.fromEntries(Object.entries(fields).filter(([k]) => !pathNames.includes(k)));
	const op: Record<string, unknown> = {
		operationId: alias.actionName,
		summary: doc.summary,
		...((doc.description ?? alias.action?.description)
			? { description: doc.description ?? alias.action?.description }
			: {}),
		tags: [alias.actionName!.split(".")[0]],
		"x-moleculer-action": alias.actionName,
		"x-access": access,
		...(access === "public" ? { security: [] } : { security: [{ bearerAuth: [] }] }),
	};
	const parameters: unknown[] = pathNames.map(name => ({
		name,
		in: "path",
		required: true,
		schema: ruleSchema(fields[name] ?? "string"),
	}));
	if (BODY_METHODS.has(method)) {
		if (Object.keys(rest).length) {
			const schema = propsSchema(rest, strict);
			const example = doc.example
				? Object.fromEntries(Object.entries(doc.example).filter(([k]) => !pathNames.includes(k)))
				: undefined;
			op.requestBody = {
				required: Array.isArray(schema.required),
				content: { "application/json": { schema, ...(example ? { example } : {}) } },
			};
		}
	} else {
		for (const [name, rule] of Object.entries(rest)) {
			parameters.push({
				name,
				in: "query",
				required: !isOptional(rule),
				schema: ruleSchema(rule),
				...(doc.example && name in doc.example ? { example: doc.example[name] } : {}),
			});
		}
	}
	for (const p of parameters as { name: string; in: string; example?: unknown }[]) {
		if (p.in === "path" && doc.example && p.name in doc.example) p.example = doc.example[p.name];
	}
	if (parameters.length) op.parameters = parameters;
	if (doc.example) op["x-example-request"] = doc.example;
	op.responses = responses(method, access, Object.keys(fields).length > 0, pathNames.length > 0, doc);
	return op;
}

/** Build the OpenAPI 3.0 document. An action alias without docs still gets an operation (summary: its action name). */
export function buildOpenApi(input: OpenApiInput): JsonSchema {
	const paths: Record<string, Record<string, unknown>> = {};
	const add = (method: string, path: string, op: unknown) => {
		(paths[path] ??= {})[method.toLowerCase()] = op;
	};
	for (const alias of input.aliases) {
		if (!alias.actionName) continue;
		const { path, names } = pathTemplate(alias.fullPath);
		const methods = alias.methods === "*" ? ["GET", "POST", "PUT", "PATCH", "DELETE"] : [alias.methods];
		const doc = input.docs[alias.actionName] ?? { summary: alias.actionName };
		for (const method of methods) add(method, path, operation(method, alias, doc, names));
	}
	for (const route of input.functionRoutes ?? []) {
		add(route.method, route.path, {
			operationId: `${route.method.toLowerCase()}${route.path.replace(/[^A-Za-z0-9]+/g, "_")}`,
			summary: route.summary,
			...(route.description ? { description: route.description } : {}),
			tags: ["gateway"],
			"x-access": "public",
			security: [],
			responses: {
				[route.status ?? 200]: {
					description: route.summary,
					...(route.response ? { content: { "application/json": { schema: route.response } } } : {}),
				},
				...Object.fromEntries(
					Object.entries(route.refusals ?? {}).map(([code, text]) => [code, errorResponse(text)]),
				),
			},
		});
	}
	return {
		openapi: "3.0.3",
		info: {
			title: input.title,
			version: input.version,
			...(input.description ? { description: input.description } : {}),
		},
		paths,
		components: {
			schemas: { Error: ERROR_SCHEMA },
			securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
		},
	};
}
