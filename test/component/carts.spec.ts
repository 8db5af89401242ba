import type { ServiceBroker } from "moleculer";
import CartsService from "../../services/carts/carts.service";
import PricingService from "../../services/pricing/pricing.service";
import ProductsService from "../../services/products/products.service";
import { startBroker } from "../helpers/shop";

let broker: ServiceBroker;
let products: any[];
const as = (id: string) => ({ meta: { user: { id, role: "customer" } } });

beforeAll(async () => {
	broker = await startBroker([ProductsService, PricingService, CartsService]);
	products = (await broker.call<any, any>("products.list", { sort: "price" })).rows;
});
afterAll(() => broker.stop());

describe("carts", () => {
	it("starts empty", async () => {
		expect(await broker.call("carts.get", {}, as("empty"))).toEqual({
			items: [],
			subtotal: 0,
			discount: 0,
			shipping: 0,
			tax: 0,
			total: 0,
			currency: "USD",
			country: "US",
		});
	});

	it("prices lines from the catalog and removes a line at quantity 0", async () => {
		const [cheap, dear] = products;
		await broker.call("carts.setItem", { productId: cheap.id, quantity: 2 }, as("u1"));
		const cart = await broker.call<any, any>("carts.setItem", { productId: dear.id, quantity: 1 }, as("u1"));
		expect(cart.subtotal).toBe(2 * cheap.price + dear.price);
		expect(cart.items).toEqual(
			expect.arrayContaining([
				expect.objectContaining({ productId: cheap.id, quantity: 2, lineTotal: 2 * cheap.price }),
			]),
		);

		const after = await broker.call<any, any>("carts.setItem", { productId: cheap.id, quantity: 0 }, as("u1"));
		expect(after.items.map((l: any) => l.productId)).toEqual([dear.id]);
		expect(await broker.call("carts.get", {}, as("u2"))).toMatchObject({ items: [] });
	});

	it("keeps every line when lines are changed at the same time", async () => {
		await Promise.all(products.map(p => broker.call("carts.setItem", { productId: p.id, quantity: 1 }, as("u3"))));
		expect((await broker.call<any, any>("carts.get", {}, as("u3"))).items).toHaveLength(products.length);
	});

	it("refuses unknown products and empties on clear", async () => {
		await expect(
			broker.call("carts.setItem", { productId: "unknown000000000", quantity: 1 }, as("u4")),
		).rejects.toMatchObject({ code: 404 });
		await broker.call("carts.setItem", { productId: products[0].id, quantity: 1 }, as("u4"));
		expect(await broker.call("carts.clear", {}, as("u4"))).toMatchObject({ items: [], total: 0 });
		expect(await broker.call("carts.items", { userId: "u4" })).toEqual([]);
	});

	it("removes only the ordered lines after a checkout, and keeps a line changed meanwhile", async () => {
		const [a, b, c] = products;
		await broker.call("carts.setItem", { productId: a.id, quantity: 1 }, as("u5"));
		await broker.call("carts.setItem", { productId: b.id, quantity: 1 }, as("u5"));
		await broker.call("carts.setItem", { productId: c.id, quantity: 5 }, as("u5"));
		await broker.call("carts.removeItems", {
			userId: "u5",
			items: [
				{ productId: a.id, quantity: 1 },
				{ productId: c.id, quantity: 2 },
			],
		});
		expect(await broker.call("carts.items", { userId: "u5" })).toEqual([
			{ productId: b.id, quantity: 1 },
			{ productId: c.id, quantity: 5 },
		]);
	});

	it("lists lines of products that left the catalog as unavailable", async () => {
		const gone = await broker.call<any, any>(
			"products.create",
			{ sku: "GONE-1", name: "Gone", price: 100, category: "x", stock: 1 },
			{ meta: { user: { id: "a", role: "admin" } } },
		);
		await broker.call("carts.setItem", { productId: gone.id, quantity: 1 }, as("u6"));
		await broker.call("products.remove", { id: gone.id });
		expect(await broker.call("carts.get", {}, as("u6"))).toMatchObject({
			items: [],
			total: 0,
			unavailable: [{ productId: gone.id, quantity: 1 }],
		});
		expect(await broker.call("carts.setItem", { productId: gone.id, quantity: 0 }, as("u6"))).not.toHaveProperty(
			"unavailable",
		);
	});
});
