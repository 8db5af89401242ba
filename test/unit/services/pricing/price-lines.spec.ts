/** Pricing requested lines from catalog products (services/pricing/price-lines.ts), with no broker. */
import { mergeItems } from "../../../../contracts/items";
import { priceLines } from "../../../../services/pricing/price-lines";

describe("pricing", () => {
	const products = [
		{ id: "a", sku: "A", name: "A", price: 199, currency: "USD" },
		{ id: "b", sku: "B", name: "B", price: 1000, currency: "USD" },
	];

	it("adds integer cents exactly", () => {
		const priced = priceLines(
			[
				{ productId: "a", quantity: 3 },
				{ productId: "b", quantity: 1 },
			],
			products,
		);
		expect(priced).toMatchObject({ currency: "USD", missing: [], mixedCurrencies: false });
		expect(priced.items.reduce((sum, line) => sum + line.lineTotal, 0)).toBe(1597);
		expect(priced.items[0]).toEqual({
			productId: "a",
			sku: "A",
			name: "A",
			unitPrice: 199,
			quantity: 3,
			lineTotal: 597,
		});
	});

	it("reports missing products and mixed currencies", () => {
		const priced = priceLines(
			[
				{ productId: "a", quantity: 1 },
				{ productId: "x", quantity: 1 },
				{ productId: "e", quantity: 1 },
			],
			[...products, { id: "e", sku: "E", name: "E", price: 5, currency: "EUR" }],
		);
		expect(priced.missing).toEqual(["x"]);
		expect(priced.mixedCurrencies).toBe(true);
	});

	it("merges repeated lines", () => {
		expect(
			mergeItems([
				{ productId: "a", quantity: 1 },
				{ productId: "b", quantity: 2 },
				{ productId: "a", quantity: 3 },
			]),
		).toEqual([
			{ productId: "a", quantity: 4 },
			{ productId: "b", quantity: 2 },
		]);
	});
});
