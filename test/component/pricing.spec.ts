import type { ServiceBroker } from "moleculer";
import PricingService from "../../services/pricing/pricing.service";
import ProductsService from "../../services/products/products.service";
import { startBroker } from "../helpers/shop";

describe("pricing.quote", () => {
	let broker: ServiceBroker;
	let products: any[];
	beforeAll(async () => {
		broker = await startBroker([ProductsService, PricingService]);
		products = (await broker.call<any, any>("products.list", { sort: "price" })).rows;
	});
	afterAll(() => broker.stop());

	it("prices from the catalog and lists products it does not know", async () => {
		const [a] = products;
		const q = await broker.call<any, any>("pricing.quote", {
			items: [
				{ productId: a.id, quantity: 2 },
				{ productId: "gone000000000000", quantity: 1 },
				{ productId: a.id, quantity: 1 },
			],
			country: "fr",
		});
		expect(q).toMatchObject({ subtotal: 3 * a.price, shipping: 799, country: "FR", missing: ["gone000000000000"] });
		expect(q.items).toEqual([expect.objectContaining({ productId: a.id, quantity: 3, unitPrice: a.price })]);
	});

	it("answers 422 with the reason for a code or country it cannot use", async () => {
		const items = [{ productId: products[0].id, quantity: 1 }];
		await expect(broker.call("pricing.quote", { items, discountCode: "NOPE" })).rejects.toMatchObject({
			code: 422,
			type: "UNKNOWN_DISCOUNT_CODE",
		});
		await expect(broker.call("pricing.quote", { items, country: "ZZ" })).rejects.toMatchObject({
			code: 422,
			type: "UNSUPPORTED_COUNTRY",
		});
	});
});
