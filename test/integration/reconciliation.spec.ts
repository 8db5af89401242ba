/**
 * After a few hundred mixed orders — paid, declined, failed at the provider,
 * timed out, cancelled — analytics agrees exactly with the payments ledger and
 * the orders, and state, stock and ledger agree for every order.
 */
import { startShop, type Shop } from "../helpers/shop";
import { waitFor } from "../helpers/process";
import { checkInvariant } from "../helpers/invariant";

let shop: Shop;
beforeAll(async () => {
	shop = await startShop();
});
afterAll(() => shop.stop());

const ORDERS = 300;
const CONCURRENCY = 10;
/** One in ten is declined, one in twenty fails at the provider, two time out, one in eight paid orders is cancelled. */
const cardFor = (i: number) =>
	i % 10 === 3
		? "pm_card_chargeDeclined"
		: i % 20 === 7
			? "pm_card_chargeDeclinedProcessingError"
			: i === 11 || i === 222
				? "pm_card_timeout"
				: "pm_card_visa";

it("analytics reconciles with the ledger and the orders after a mixed run", async () => {
	const admin = await shop.adminToken();
	const initialStock: Record<string, number> = {};
	const products: any[] = [];
	for (let p = 0; p < 6; p++) {
		const res = await shop.request("POST", "/api/v1/products", {
			token: admin,
			body: { sku: `RECON-${p}`, name: `Recon ${p}`, price: 250 + 375 * p, category: "recon", stock: 1_000 },
		});
		products.push(res.body);
		initialStock[res.body.id] = 1_000;
	}
	const customers = await Promise.all(Array.from({ length: 8 }, (_, i) => shop.signUp(`Buyer ${i}`)));
	for (const product of products.slice(0, 4))
		await shop.request("GET", `/api/v1/products/${product.id}`, { token: customers[0].token });

	const statuses: Record<string, number> = {};
	let next = 0;
	async function buyer() {
		while (next < ORDERS) {
			const i = next++;
			const customer = customers[i % customers.length];
			const items = [{ productId: products[i % products.length].id, quantity: 1 + (i % 3) }];
			if (i % 4 === 0) items.push({ productId: products[(i + 1) % products.length].id, quantity: 2 });
			const res = await shop.request("POST", "/api/v1/orders", {
				token: customer.token,
				body: { items, paymentMethod: cardFor(i) },
			});
			statuses[res.status] = (statuses[res.status] ?? 0) + 1;
			if (res.status === 201 && i % 8 === 1) {
				expect(
					(await shop.request("POST", `/api/v1/orders/${res.body.id}/cancel`, { token: customer.token }))
						.status,
				).toBe(200);
			}
		}
	}
	await Promise.all(Array.from({ length: CONCURRENCY }, buyer));
	expect(statuses["201"] + statuses["402"]).toBe(ORDERS);

	const orders = await checkInvariant(shop.broker, initialStock);
	const count = (status: string) => orders.filter(o => o.status === status).length;
	const { USD: ledger } = await shop.broker.call<any, any>("payments.totals", {});
	expect(ledger.charges).toBe(count("paid") + count("cancelled"));
	expect(ledger.refunds).toBe(count("cancelled"));

	const today = new Date().toISOString().slice(0, 10);
	const summary = async () =>
		(await shop.request("GET", `/api/v1/analytics/summary?from=${today}&to=${today}`, { token: admin })).body;
	await waitFor(
		async () => {
			const { orders: seen } = await summary();
			return (
				seen.paid === ledger.charges &&
				seen.cancelled === ledger.refunds &&
				seen.paymentFailed === count("payment_failed")
			);
		},
		30_000,
		"analytics to catch up with the ledger",
	);
	const figures = await summary();
	expect(figures.revenue).toEqual({ gross: ledger.charged, refunded: ledger.refunded, net: ledger.net });
	expect(figures.averageOrderValue).toBe(Math.round(ledger.charged / ledger.charges));
	expect(figures.days).toEqual([
		expect.objectContaining({
			date: today,
			orders: ledger.charges,
			gross: ledger.charged,
			refunded: ledger.refunded,
		}),
	]);

	const top = (await shop.request("GET", "/api/v1/analytics/products/top?by=units&limit=50", { token: admin })).body
		.rows;
	for (const product of products) {
		const sold =
			initialStock[product.id] - (await shop.request("GET", `/api/v1/products/${product.id}`)).body.stock;
		expect(top.find((row: any) => row.productId === product.id)?.units ?? 0).toBe(sold);
	}
	expect(
		top
			.filter((row: any) => row.views > 0)
			.map((row: any) => row.productId)
			.sort(),
	).toEqual(
		products
			.slice(0, 4)
			.map(p => p.id)
			.sort(),
	);
}, 240_000);
