/**
 * What the REST contract's schemas cannot say: per action a summary, the success status and
 * body shape, the refusals beyond the common ones, and an example request. Parameters are
 * never listed here: platform/openapi.ts takes them from each action's own `params`.
 * The contract test (test/integration/openapi.spec.ts) checks live answers against these shapes.
 */
import type { FunctionRouteDoc, JsonSchema, OperationDoc } from "../../platform/openapi";

const str = { type: "string" };
const int = { type: "integer" };
const obj = (required: string[], properties: Record<string, JsonSchema> = {}): JsonSchema => ({
	type: "object",
	required,
	properties: { ...Object.fromEntries(required.map(key => [key, {}])), ...properties },
});
const page = (row: JsonSchema): JsonSchema =>
	obj(["rows", "total", "page", "pageSize", "totalPages"], {
		rows: { type: "array", items: row },
		total: int,
		page: int,
		pageSize: int,
		totalPages: int,
	});

const user = obj(["id", "name", "email", "role"], { id: str, name: str, email: str, role: str });
const session = obj(["user", "token"], { user, token: str });
const product = obj(["id", "sku", "name", "price", "stock"], { id: str, sku: str, name: str, price: int, stock: int });
const quote = obj(["items", "subtotal", "discount", "shipping", "tax", "total", "currency", "country"], {
	items: { type: "array" },
	subtotal: int,
	discount: int,
	shipping: int,
	tax: int,
	total: int,
	currency: str,
	country: str,
});
const cart = obj(["items", "total", "currency"], { items: { type: "array" }, total: int, currency: str });
const order = obj(["id", "userId", "items", "total", "currency", "status", "timeline", "createdAt"], {
	id: str,
	userId: str,
	items: {
		type: "array",
		items: obj(["productId", "quantity", "unitPrice", "lineTotal"], { productId: str, quantity: int }),
	},
	total: int,
	currency: str,
	status: { type: "string", enum: ["reserved", "paid", "payment_failed", "cancelled"] },
	timeline: { type: "array", items: obj(["status", "at"], { status: str, at: str }) },
	createdAt: str,
});
const invoice = obj(["number", "orderId", "items", "total", "currency", "issuedAt"], {
	number: str,
	orderId: str,
	items: { type: "array" },
	total: int,
	currency: str,
	issuedAt: str,
});
const notification = obj(["template", "channel", "to", "status", "createdAt"], {
	template: str,
	channel: { type: "string", enum: ["email", "sms", "push"] },
	to: str,
	status: str,
});
const ID = "p_1";

/** Per action name. */
export const operationDocs: Record<string, OperationDoc> = {
	"users.register": {
		summary: "Register a customer account",
		status: 201,
		response: session,
		refusals: { 409: "The email is taken" },
		example: { name: "Ada", email: "ada@example.com", password: "correct horse battery" },
	},
	"users.login": {
		summary: "Log in: a token for the Authorization header",
		response: session,
		refusals: { 401: "Wrong email or password (one answer for both)" },
		example: { email: "ada@example.com", password: "correct horse battery" },
	},
	"users.me": { summary: "The signed-in user", response: user, example: {} },
	"users.updateMe": {
		summary: "Change your name, phone or notification channels",
		response: user,
		example: { name: "Ada L.", preferences: { channels: ["email", "push"] } },
	},
	"users.list": {
		summary: "All users, a page at a time",
		response: page(user),
		example: { page: "1", pageSize: "20" },
	},

	"catalog.list": {
		summary: "Search and browse the catalog",
		description:
			"Text search, category, price range in cents, sorting (`name`, `price`, `createdAt`, `-` for descending), pages.",
		response: page(product),
		example: { q: "mug", category: "kitchen", maxPrice: "2000", sort: "-price", pageSize: "5" },
	},
	"catalog.view": { summary: "One product", response: product, example: { id: ID } },
	"products.create": {
		summary: "Add a product to the catalog",
		status: 201,
		response: product,
		refusals: { 409: "The SKU is taken" },
		example: { sku: "LAMP-01", name: "Desk Lamp", price: 3999, category: "home", stock: 5 },
	},
	"products.update": { summary: "Change a product", response: product, example: { id: ID, price: 3499 } },
	"products.remove": { summary: "Take a product out of the catalog", status: 204, example: { id: ID } },

	"carts.get": { summary: "Your cart, priced", response: cart, example: { country: "US" } },
	"carts.setItem": {
		summary: "Set a line's quantity (0 removes it)",
		response: cart,
		example: { productId: ID, quantity: 2 },
	},
	"carts.clear": { summary: "Empty your cart", response: cart, example: {} },

	"pricing.quote": {
		summary: "Price lines without ordering",
		response: quote,
		example: { items: [{ productId: ID, quantity: 1 }], country: "US" },
	},

	"orders.create": {
		summary: "Check out: reserve, charge, invoice",
		description:
			"Name the lines (`items`) or use the cart (`fromCart: true`). An `Idempotency-Key` header makes a repeat return the same order. 202 with the `reserved` order when the provider's answer is not known yet.",
		status: 201,
		response: order,
		refusals: {
			402: "PAYMENT_FAILED: the order is kept as payment_failed (`data: {orderId, reason}`)",
			409: "OUT_OF_STOCK, with the short items",
		},
		example: { fromCart: true, paymentMethod: "pm_card_visa" },
	},
	"orders.list": { summary: "Your orders, newest first", response: page(order), example: { page: "1" } },
	"orders.get": { summary: "One of your orders", response: order, example: { id: "o_1" } },
	"orders.cancel": {
		summary: "Cancel a paid order: refunded in full, stock back",
		response: order,
		refusals: { 409: "ORDER_NOT_CANCELLABLE unless it is paid" },
		example: { id: "o_1" },
	},
	"invoices.forOrder": {
		summary: "The invoice of one of your paid orders",
		response: invoice,
		example: { id: "o_1" },
	},

	"notifications.list": {
		summary: "The messages you were sent, newest first",
		response: page(notification),
		example: { pageSize: "10" },
	},

	"analytics.summary": {
		summary: "Orders, revenue, conversion per UTC day",
		response: obj(["orders", "revenue", "averageOrderValue", "newUsers", "views", "conversion", "days"], {
			days: { type: "array" },
		}),
		example: { from: "2026-11-01", to: "2026-11-30" },
	},
	"analytics.topProducts": {
		summary: "Best-selling products by units or revenue",
		response: obj(["rows"], {
			rows: { type: "array", items: obj(["productId", "units", "revenue"], { productId: str }) },
		}),
		example: { by: "revenue", limit: "5" },
	},

	"events.deadLetters": {
		summary: "The dead-letter queue",
		response: obj(["durable", "rows"], { durable: { type: "boolean" }, rows: { type: "array" } }),
		example: { limit: "10" },
	},
	"events.redrive": {
		summary: "Publish a dead letter again",
		refusals: { 409: "Nothing to redrive (no durable dead-letter queue, or the message is gone)" },
		example: { seq: "1" },
	},
};

const readiness = obj(["status", "missing"], { status: str, missing: { type: "array", items: str } });

/** The gateway's own routes (function aliases) in the contract. */
export const gatewayRouteDocs: FunctionRouteDoc[] = [
	{
		method: "GET",
		path: "/health",
		summary: "Liveness: the process answers",
		response: obj(["status", "nodeID"], { status: { type: "string", enum: ["ok"] }, nodeID: str }),
	},
	{
		method: "GET",
		path: "/ready",
		summary: "Readiness: every service the gateway routes to is available",
		description:
			'503 with the same shape (`status: "unavailable"`, the services missing) and Retry-After when not ready.',
		response: readiness,
	},
	{ method: "GET", path: "/api/v1/openapi.json", summary: "This document" },
];
