import type { ServiceBroker } from "moleculer";
import CartsService from "../../services/carts.service";
import OrdersService from "../../services/orders.service";
import ProductsService from "../../services/products.service";
import UsersService from "../../services/users.service";
import { startBroker } from "../helpers/shop";

let broker: ServiceBroker;
let products: any[];
let user: { id: string; role: string };
const as = (u: { id: string; role: string }, meta: object = {}) => ({ meta: { user: u, ...meta } });
const stockOf = async (id: string) => (await broker.call<any, any>("products.get", { id })).stock;

beforeAll(async () => {
	broker = await startBroker([UsersService, ProductsService, CartsService, OrdersService]);
	products = (await broker.call<any, any>("products.list", { sort: "price" })).rows;
	user = (await broker.call<any, any>("users.register", { name: "Buyer", email: "buyer@test.io", password: "password123" })).user;
});
afterAll(() => broker.stop());

describe("orders.create", () => {
	it("stores priced lines and the total, and takes the stock", async () => {
		const [a, b] = products;
		const order = await broker.call<any, any>("orders.create", { items: [{ productId: a.id, quantity: 2 }, { productId: b.id, quantity: 1 }] }, as(user));
		expect(order).toMatchObject({ userId: user.id, status: "reserved", total: 2 * a.price + b.price, currency: "USD" });
		expect(order.items[0]).toEqual({ productId: a.id, sku: a.sku, name: a.name, unitPrice: a.price, quantity: 2, lineTotal: 2 * a.price });
		expect(await stockOf(a.id)).toBe(a.stock - 2);
	});

	it("refuses a checkout for an account that no longer exists, and reserves nothing", async () => {
		const ghost = { id: "ghost00000000000", role: "customer" };
		await expect(broker.call("orders.create", { items: [{ productId: products[0].id, quantity: 1 }] }, as(ghost))).rejects.toMatchObject({ code: 404 });
		expect((await broker.call<any, any>("products.get", { id: products[0].id })).stock).toBe(products[0].stock - 2);
	});

	it("refuses an empty cart", async () => {
		await expect(broker.call("orders.create", { fromCart: true }, as(user))).rejects.toMatchObject({ code: 422, type: "EMPTY_CART" });
	});

	it("leaves no order behind when stock is short", async () => {
		const before = await broker.call<any, any>("orders.list", {}, as(user));
		const cap = products.find(p => p.sku === "CAP-001");
		await expect(broker.call("orders.create", { items: [{ productId: cap.id, quantity: cap.stock + 1 }] }, as(user))).rejects.toMatchObject({ code: 409 });
		expect((await broker.call<any, any>("orders.list", {}, as(user))).total).toBe(before.total);
	});

	it("returns the first order for a repeated Idempotency-Key", async () => {
		const params = { items: [{ productId: products[1].id, quantity: 1 }] };
		const first = await broker.call<any, any>("orders.create", params, as(user, { idempotencyKey: "k1" }));
		const again = await broker.call<any, any>("orders.create", params, as(user, { idempotencyKey: "k1" }));
		expect(again).toEqual(first);
		const fresh = await broker.call<any, any>("orders.create", params, as(user, { idempotencyKey: "k2" }));
		expect(fresh.id).not.toBe(first.id);
	});

	it("creates one order when repeats with one key arrive at the same moment", async () => {
		const product = products[3];
		const params = { items: [{ productId: product.id, quantity: 1 }] };
		const results = await Promise.all(Array.from({ length: 10 }, () => broker.call<any, any>("orders.create", params, as(user, { idempotencyKey: "same-moment" }))));
		expect(new Set(results.map(order => order.id)).size).toBe(1);
		expect(await stockOf(product.id)).toBe(product.stock - 1);
	});

	it("lets a key be used again after its first request failed", async () => {
		const cap = products.find(p => p.sku === "CAP-001");
		const meta = { idempotencyKey: "retry-after-409" };
		await expect(broker.call("orders.create", { items: [{ productId: cap.id, quantity: 999 }] }, as(user, meta))).rejects.toMatchObject({ code: 409 });
		await expect(broker.call("orders.create", { items: [{ productId: cap.id, quantity: 999 }] }, as(user, meta))).rejects.toMatchObject({ code: 409 });
	});
});

describe("orders.list / orders.get", () => {
	it("shows users their own orders only, newest first", async () => {
		const other = (await broker.call<any, any>("users.register", { name: "Other", email: "other@test.io", password: "password123" })).user;
		const theirs = await broker.call<any, any>("orders.create", { items: [{ productId: products[2].id, quantity: 1 }] }, as(other));
		const mine = await broker.call<any, any>("orders.list", {}, as(user));
		expect(mine.rows.every((o: any) => o.userId === user.id)).toBe(true);
		const dates = mine.rows.map((o: any) => new Date(o.createdAt).getTime());
		expect(dates).toEqual([...dates].sort((x, y) => y - x));
		await expect(broker.call("orders.get", { id: theirs.id }, as(user))).rejects.toMatchObject({ code: 404 });
		expect(await broker.call("orders.get", { id: theirs.id }, as(other))).toEqual(theirs);
	});
});
