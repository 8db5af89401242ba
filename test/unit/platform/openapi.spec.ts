/** fastest-validator rules → JSON Schema, and paths, as platform/openapi.ts writes them. */
import { buildOpenApi, pathTemplate, propsSchema, ruleSchema } from "../../../platform/openapi";

describe("ruleSchema", () => {
	it("reads the shorthand string form", () => {
		expect(ruleSchema("string|min:1|max:10|optional")).toEqual({ type: "string", minLength: 1, maxLength: 10 });
		expect(ruleSchema("number|integer:true|min:0")).toEqual({ type: "integer", minimum: 0 });
		expect(ruleSchema("boolean")).toEqual({ type: "boolean" });
	});

	it("keeps constraints, formats, enums and defaults", () => {
		expect(ruleSchema({ type: "string", length: 3, pattern: /^[A-Z]+$/ })).toEqual({
			type: "string",
			minLength: 3,
			maxLength: 3,
			pattern: "^[A-Z]+$",
		});
		expect(ruleSchema({ type: "string", empty: false })).toEqual({ type: "string", minLength: 1 });
		expect(ruleSchema({ type: "email", max: 254 })).toEqual({ type: "string", format: "email", maxLength: 254 });
		expect(ruleSchema({ type: "uuid" })).toEqual({ type: "string", format: "uuid" });
		expect(ruleSchema({ type: "enum", values: ["units", "revenue"], default: "units" })).toEqual({
			enum: ["units", "revenue"],
			default: "units",
		});
		expect(ruleSchema({ type: "equal", value: true })).toEqual({ enum: [true] });
		expect(ruleSchema({ type: "number", integer: true, positive: true, max: 99 })).toEqual({
			type: "integer",
			minimum: 0,
			exclusiveMinimum: true,
			maximum: 99,
		});
	});

	it("leaves out a pattern that went through JSON (a remote action's RegExp)", () => {
		const remote = JSON.parse(JSON.stringify({ type: "string", pattern: /^a$/ }));
		expect(ruleSchema(remote)).toEqual({ type: "string" });
	});

	it("nests objects and arrays, with required keys and strictness", () => {
		const rule = {
			type: "array",
			min: 1,
			max: 50,
			items: {
				type: "object",
				strict: true,
				props: { productId: "string", quantity: { type: "number", optional: true } },
			},
		};
		expect(ruleSchema(rule)).toEqual({
			type: "array",
			minItems: 1,
			maxItems: 50,
			items: {
				type: "object",
				properties: { productId: { type: "string" }, quantity: { type: "number" } },
				required: ["productId"],
				additionalProperties: false,
			},
		});
		expect(ruleSchema(["string", "number"])).toEqual({ oneOf: [{ type: "string" }, { type: "number" }] });
	});

	it("counts a rule with a default as optional", () => {
		expect(propsSchema({ a: { type: "number", default: 1 }, b: "string", $$strict: true }, true)).toEqual({
			type: "object",
			properties: { a: { type: "number", default: 1 }, b: { type: "string" } },
			required: ["b"],
			additionalProperties: false,
		});
	});
});

describe("buildOpenApi", () => {
	it("turns :params into path parameters and splits query from body by method", () => {
		expect(pathTemplate("/api/v1/orders/:id/cancel")).toEqual({
			path: "/api/v1/orders/{id}/cancel",
			names: ["id"],
		});
		const doc = buildOpenApi({
			title: "t",
			version: "1",
			docs: {},
			aliases: [
				{
					actionName: "things.update",
					fullPath: "/things/:id",
					methods: "PATCH",
					action: { auth: "user", params: { $$strict: true, id: "string", name: "string" } },
				},
				{
					actionName: "things.list",
					fullPath: "/things",
					methods: "GET",
					action: { auth: "public", params: { q: "string|optional" } },
				},
				{ actionName: "things.purge", fullPath: "/things", methods: "DELETE", action: {} },
			],
		}) as any;
		const update = doc.paths["/things/{id}"].patch;
		expect(update.parameters).toEqual([{ name: "id", in: "path", required: true, schema: { type: "string" } }]);
		expect(update.requestBody.content["application/json"].schema).toEqual({
			type: "object",
			properties: { name: { type: "string" } },
			required: ["name"],
			additionalProperties: false,
		});
		expect(update.security).toEqual([{ bearerAuth: [] }]);
		expect(Object.keys(update.responses)).toEqual(expect.arrayContaining(["200", "401", "404", "422", "413"]));
		expect(update.responses["403"]).toBeUndefined();

		const list = doc.paths["/things"].get;
		expect(list.parameters).toEqual([{ name: "q", in: "query", required: false, schema: { type: "string" } }]);
		expect(list.security).toEqual([]);
		// no auth declared: admin-only, as the gateway enforces it
		expect(doc.paths["/things"].delete["x-access"]).toBe("admin");
		expect(doc.paths["/things"].delete.responses["403"]).toBeDefined();
	});
});
