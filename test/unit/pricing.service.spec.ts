import type { ServiceBroker } from "moleculer";
import { loadConfig } from "../../platform/config";
import { DEFAULT_COUNTRIES, type PricingRules, proportion, quote, QuoteError } from "../../services/pricing/quote";
import PricingService from "../../services/pricing/pricing.service";
import ProductsService from "../../services/products/products.service";
import { startBroker } from "../helpers/shop";

const rules: PricingRules = {
	countries: DEFAULT_COUNTRIES,
	freeShippingFrom: 10_000,
	discountCodes: [
		{ code: "TEN", kind: "percent", value: 10 },
		{ code: "FIVER", kind: "fixed", value: 500, minSubtotal: 2500 },
		{ code: "WINDOW", kind: "percent", value: 50, validFrom: "2026-11-27T00:00:00Z", validUntil: "2026-12-01T00:00:00Z" },
	],
};
const line = (unitPrice: number, quantity = 1) => ({ productId: `p${unitPrice}`, sku: "S", name: "N", unitPrice, quantity, lineTotal: unitPrice * quantity });
const at = new Date("2026-11-28T12:00:00Z");

describe("quote (services/pricing/quote.ts)", () => {
	it("rounds half up in integers", () => {
		expect([proportion(5, 1, 2), proportion(199_9, 10, 100), proportion(1001, 1900, 10_000), proportion(7, 1, 3)]).toEqual([3, 200, 190, 2]);
	});

	it("adds shipping and the destination's tax on the discounted subtotal plus shipping", () => {
		const q = quote([line(1999, 2)], "EUR", { country: "DE", discountCode: "ten", at }, rules);
		// subtotal 3998, discount 400 (399.8 rounded), shipping 799, tax 19 % of 4397 = 835.43 → 835
		expect(q).toEqual({ items: [line(1999, 2)], subtotal: 3998, discount: 400, discountCode: "TEN", shipping: 799, tax: 835, total: 3998 - 400 + 799 + 835, currency: "EUR", country: "DE" });
	});

	it("ships free from the threshold, measured after the discount", () => {
		expect(quote([line(10_000)], "USD", { country: "US", at }, rules).shipping).toBe(0);
		expect(quote([line(10_000)], "USD", { country: "US", discountCode: "TEN", at }, rules).shipping).toBe(499);
	});

	it("caps a fixed discount and honours the minimum subtotal", () => {
		expect(quote([line(2500)], "USD", { country: "US", discountCode: "FIVER", at }, rules).discount).toBe(500);
		expect(() => quote([line(2499)], "USD", { country: "US", discountCode: "FIVER", at }, rules)).toThrow(expect.objectContaining({ type: "DISCOUNT_MIN_SUBTOTAL" }));
	});

	it("applies a code only inside its validity window", () => {
		const tryAt = (iso: string) => () => quote([line(1000)], "USD", { country: "US", discountCode: "WINDOW", at: new Date(iso) }, rules);
		expect(tryAt("2026-11-26T23:59:59Z")).toThrow(expect.objectContaining({ type: "DISCOUNT_NOT_YET_VALID" }));
		expect(tryAt("2026-11-27T00:00:00Z")().discount).toBe(500);
		expect(tryAt("2026-12-01T00:00:00Z")).toThrow(expect.objectContaining({ type: "DISCOUNT_EXPIRED" }));
	});

	it("refuses unknown codes and countries it does not ship to", () => {
		expect(() => quote([line(1000)], "USD", { country: "US", discountCode: "NOPE", at }, rules)).toThrow(QuoteError);
		expect(() => quote([line(1000)], "USD", { country: "ZZ", at }, rules)).toThrow(expect.objectContaining({ type: "UNSUPPORTED_COUNTRY" }));
	});

	it("quotes an empty cart as zero", () => {
		expect(quote([], "USD", { country: "DE", at }, rules)).toMatchObject({ subtotal: 0, shipping: 0, tax: 0, total: 0 });
	});
});

describe("discount codes in the configuration", () => {
	it("come from DISCOUNT_CODES when it is set", () => {
		const codes = loadConfig({ DISCOUNT_CODES: '[{"code":"SPRING15","kind":"percent","value":15,"validUntil":"2027-04-01"}]' }).pricing.discountCodes;
		expect(codes).toEqual([{ code: "SPRING15", kind: "percent", value: 15, validUntil: "2027-04-01" }]);
	});

	it("refuse malformed definitions", () => {
		for (const bad of ["not json", '{"code":"X"}', '[{"code":"A","kind":"percent","value":150}]', '[{"code":"A","kind":"fixed","value":1.5}]', '[{"code":"A","kind":"fixed","value":5,"validUntil":"someday"}]']) {
			expect(() => loadConfig({ DISCOUNT_CODES: bad })).toThrow(/DISCOUNT_CODES/);
		}
	});
});

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
		const q = await broker.call<any, any>("pricing.quote", { items: [{ productId: a.id, quantity: 2 }, { productId: "gone000000000000", quantity: 1 }, { productId: a.id, quantity: 1 }], country: "fr" });
		expect(q).toMatchObject({ subtotal: 3 * a.price, shipping: 799, country: "FR", missing: ["gone000000000000"] });
		expect(q.items).toEqual([expect.objectContaining({ productId: a.id, quantity: 3, unitPrice: a.price })]);
	});

	it("answers 422 with the reason for a code or country it cannot use", async () => {
		const items = [{ productId: products[0].id, quantity: 1 }];
		await expect(broker.call("pricing.quote", { items, discountCode: "NOPE" })).rejects.toMatchObject({ code: 422, type: "UNKNOWN_DISCOUNT_CODE" });
		await expect(broker.call("pricing.quote", { items, country: "ZZ" })).rejects.toMatchObject({ code: 422, type: "UNSUPPORTED_COUNTRY" });
	});
});
