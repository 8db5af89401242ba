/**
 * The payment provider cannot be reached (README "The order saga": "if the provider cannot be
 * reached, the order stays `reserved` (checkout answers 202) until the sweep settles it"): nothing
 * is guessed while it is down — no charge, no payment_failed, the stock stays held, also when the
 * recovery sweep comes by — and once it is back the sweep takes the payment by itself.
 */
// Read by platform/config.ts when the services load below: the sweep finishes orders left 2 s (it runs every 0.67 s).
process.env.ORDER_RECOVERY_AFTER_MS = "2000";

import { config } from "../../platform/config";
import { checkInvariant } from "../helpers/invariant";
import { waitFor } from "../helpers/process";
import { startShop, withoutService, type Shop } from "../helpers/shop";

let shop: Shop;
let admin: string;
const initialStock: Record<string, number> = {};

beforeAll(async () => {
	expect(config.orders.recoverAfterMs).toBe(2_000);
	shop = await startShop();
	admin = await shop.adminToken();
});
afterAll(() => shop.stop());

const orders = () => shop.broker.getLocalService("orders") as any;
const stockOf = async (id: string) => (await shop.request("GET", `/api/v1/products/${id}`)).body.stock;
const ledgerOf = (orderId: string) => shop.broker.call<any[], any>("payments.forOrder", { orderId });
const orderOf = (id: string) => shop.broker.call<any, any>("orders.find", { id });

it("answers 202 with the order reserved, charges nothing and keeps the stock while the provider is down; the sweep settles it once it is back", async () => {
	const customer = await shop.signUp("Patient");
	const sku = `OUTAGE-${Date.now()}`;
	const product = (
		await shop.request("POST", "/api/v1/products", {
			token: admin,
			body: { sku, name: `Outage ${sku}`, price: 1_500, category: "test", stock: 5 },
		})
	).body;
	initialStock[product.id] = 5;
	// Who tries to settle which order: the checkout itself, then the sweep.
	const settle = jest.spyOn(orders(), "settlePayment");
	const settlesOf = (id: string) => settle.mock.calls.filter(([order]: any) => String(order._id) === id).length;
	let order: any;
	try {
		await withoutService(shop.broker, "payment-provider", async () => {
			const res = await shop.request("POST", "/api/v1/orders", {
				token: customer.token,
				body: { items: [{ productId: product.id, quantity: 2 }], paymentMethod: "pm_card_visa" },
			});
			expect(res.status).toBe(202);
			expect(res.body).toMatchObject({ status: "reserved" });
			order = res.body;
			// The sweep comes by (the order is older than ORDER_RECOVERY_AFTER_MS) and cannot settle it either.
			await waitFor(async () => settlesOf(order.id) >= 3, 15_000, "the sweep to try the order twice");
			expect(await orderOf(order.id)).toMatchObject({ status: "reserved" });
			expect(await ledgerOf(order.id)).toEqual([
				expect.objectContaining({ kind: "charge", status: "pending", amount: order.total }),
			]);
			expect(await stockOf(product.id)).toBe(3); // still held for the order, not released
		});
	} finally {
		settle.mockRestore();
	}

	// The provider is back: the sweep takes the payment, by itself.
	await waitFor(async () => (await orderOf(order.id)).status !== "reserved", 20_000, "the sweep to settle the order");
	expect(await orderOf(order.id)).toMatchObject({ status: "paid", invoiceNumber: expect.any(String) });
	expect(await ledgerOf(order.id)).toEqual([
		expect.objectContaining({ kind: "charge", status: "succeeded", amount: order.total }),
	]);
	expect(await shop.broker.call("payment-provider.findCharge", { key: `charge:${order.id}` })).toMatchObject({
		status: "succeeded",
		amount: order.total,
	});
	expect(await stockOf(product.id)).toBe(3);
	await checkInvariant(shop.broker, initialStock);
}, 60_000);
