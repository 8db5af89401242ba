/** Quote maths (services/pricing/quote.ts), with no broker: discounts, shipping and tax in integer cents. */
import {
	DEFAULT_COUNTRIES,
	type PricingRules,
	proportion,
	quote,
	QuoteError,
} from "../../../../services/pricing/quote";

const rules: PricingRules = {
	countries: DEFAULT_COUNTRIES,
	freeShippingFrom: 10_000,
	discountCodes: [
		{ code: "TEN", kind: "percent", value: 10 },
		{ code: "FIVER", kind: "fixed", value: 500, minSubtotal: 2500 },
		{
			code: "WINDOW",
			kind: "percent",
			value: 50,
			validFrom: "2026-11-27T00:00:00Z",
			validUntil: "2026-12-01T00:00:00Z",
		},
	],
};
const line = (unitPrice: number, quantity = 1) => ({
	productId: `p${unitPrice}`,
	sku: "S",
	name: "N",
	unitPrice,
	quantity,
	lineTotal: unitPrice * quantity,
});
const at = new Date("2026-11-28T12:00:00Z");

describe("quote (services/pricing/quote.ts)", () => {
	it("rounds half up in integers", () => {
		expect([
			proportion(5, 1, 2),
			proportion(199_9, 10, 100),
			proportion(1001, 1900, 10_000),
			proportion(7, 1, 3),
		]).toEqual([3, 200, 190, 2]);
	});

	it("adds shipping and the destination's tax on the discounted subtotal plus shipping", () => {
		const q = quote([line(1999, 2)], "EUR", { country: "DE", discountCode: "ten", at }, rules);
		// subtotal 3998, discount 400 (399.8 rounded), shipping 799, tax 19 % of 4397 = 835.43 → 835
		expect(q).toEqual({
			items: [line(1999, 2)],
			subtotal: 3998,
			discount: 400,
			discountCode: "TEN",
			shipping: 799,
			tax: 835,
			total: 3998 - 400 + 799 + 835,
			currency: "EUR",
			country: "DE",
		});
	});

	it("ships free from the threshold, measured after the discount", () => {
		expect(quote([line(10_000)], "USD", { country: "US", at }, rules).shipping).toBe(0);
		expect(quote([line(10_000)], "USD", { country: "US", discountCode: "TEN", at }, rules).shipping).toBe(499);
	});

	it("caps a fixed discount and honours the minimum subtotal", () => {
		expect(quote([line(2500)], "USD", { country: "US", discountCode: "FIVER", at }, rules).discount).toBe(500);
		expect(() => quote([line(2499)], "USD", { country: "US", discountCode: "FIVER", at }, rules)).toThrow(
			expect.objectContaining({ type: "DISCOUNT_MIN_SUBTOTAL" }),
		);
	});

	it("applies a code only inside its validity window", () => {
		const tryAt = (iso: string) => () =>
			quote([line(1000)], "USD", { country: "US", discountCode: "WINDOW", at: new Date(iso) }, rules);
		expect(tryAt("2026-11-26T23:59:59Z")).toThrow(expect.objectContaining({ type: "DISCOUNT_NOT_YET_VALID" }));
		expect(tryAt("2026-11-27T00:00:00Z")().discount).toBe(500);
		expect(tryAt("2026-12-01T00:00:00Z")).toThrow(expect.objectContaining({ type: "DISCOUNT_EXPIRED" }));
	});

	it("refuses unknown codes and countries it does not ship to", () => {
		expect(() => quote([line(1000)], "USD", { country: "US", discountCode: "NOPE", at }, rules)).toThrow(
			QuoteError,
		);
		expect(() => quote([line(1000)], "USD", { country: "ZZ", at }, rules)).toThrow(
			expect.objectContaining({ type: "UNSUPPORTED_COUNTRY" }),
		);
	});

	it("quotes an empty cart as zero", () => {
		expect(quote([], "USD", { country: "DE", at }, rules)).toMatchObject({
			subtotal: 0,
			shipping: 0,
			tax: 0,
			total: 0,
		});
	});
});
