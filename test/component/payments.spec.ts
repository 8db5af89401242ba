/** payments (the ledger), the simulated provider and invoices, called directly. */
import type { ServiceBroker } from "moleculer";
import InvoicesService from "../../services/invoices/invoices.service";
import PaymentProviderService from "../../services/payment-provider/payment-provider.service";
import PaymentsService from "../../services/payments/payments.service";
import { startBroker } from "../helpers/shop";

let broker: ServiceBroker;
beforeAll(async () => {
	broker = await startBroker([PaymentProviderService, PaymentsService, InvoicesService]);
});
afterAll(() => broker.stop());

let orders = 0;
const nextOrderId = () => `order${String(++orders).padStart(8, "0")}`;
const charge = (orderId: string, paymentMethod = "pm_card_visa", amount = 2_500) =>
	broker.call<any, any>("payments.charge", { orderId, userId: "user1", amount, currency: "USD", paymentMethod });
const providerCharges = async (orderId: string) =>
	(await (broker.getLocalService("payment-provider") as any).adapter.find({ query: { key: `charge:${orderId}` } }))
		.length;

describe("payments.charge", () => {
	it("charges once per order: repeats, also at the same moment, answer the first result", async () => {
		const orderId = nextOrderId();
		const results = await Promise.all(Array.from({ length: 5 }, () => charge(orderId)));
		expect(new Set(results.map(r => r.status))).toEqual(new Set(["succeeded"]));
		expect(await charge(orderId, "pm_card_chargeDeclined")).toMatchObject({ status: "succeeded" }); // the first result, not a new charge
		expect(await providerCharges(orderId)).toBe(1);
		expect(await broker.call<any[], any>("payments.forOrder", { orderId })).toHaveLength(1);
	});

	it("records declines and processing errors as failed charges, with the reason and no card number", async () => {
		const declined = await charge(nextOrderId(), "pm_card_chargeDeclined");
		expect(declined).toMatchObject({
			status: "failed",
			failureCode: "card_declined",
			card: { brand: "visa", last4: "0002" },
		});
		expect(await charge(nextOrderId(), "pm_card_chargeDeclinedProcessingError")).toMatchObject({
			status: "failed",
			failureCode: "processing_error",
		});
		expect(await charge(nextOrderId(), "pm_card_unknown")).toMatchObject({
			status: "failed",
			failureCode: "invalid_payment_method",
		});
		const { id: _hexId, ...stored } = declined; // a hex ObjectId can hold a dozen digits in a row by chance
		expect(JSON.stringify(stored)).not.toMatch(/\d{12,}/);
	});

	it("resolves a provider timeout by looking the charge up: one charge, succeeded", async () => {
		const orderId = nextOrderId();
		expect(await charge(orderId, "pm_card_timeout")).toMatchObject({ status: "succeeded" });
		expect(await providerCharges(orderId)).toBe(1);
	});

	it("refuses a card number before anything is recorded", async () => {
		const orderId = nextOrderId();
		await expect(charge(orderId, "4242424242424242")).rejects.toMatchObject({ code: 422 });
		expect(await broker.call<any[], any>("payments.forOrder", { orderId })).toEqual([]);
	});
});

describe("payments.refund and totals", () => {
	it("refunds a charge once, nothing for a failed one, and totals what moved", async () => {
		const before = (await broker.call<any, any>("payments.totals", {})).USD;
		const paid = nextOrderId();
		await charge(paid, "pm_card_visa", 4_000);
		const refunds = await Promise.all(
			[1, 2, 3].map(() => broker.call<any, any>("payments.refund", { orderId: paid })),
		);
		expect(refunds.every(r => r.status === "succeeded" && r.amount === 4_000)).toBe(true);
		const failed = nextOrderId();
		await charge(failed, "pm_card_chargeDeclined");
		expect(await broker.call("payments.refund", { orderId: failed })).toEqual({
			orderId: failed,
			status: "none",
			amount: 0,
		});

		const after = (await broker.call<any, any>("payments.totals", {})).USD;
		expect(after.charged - before.charged).toBe(4_000);
		expect(after.refunded - before.refunded).toBe(4_000);
		expect(after.refunds - before.refunds).toBe(1);
	});
});

describe("invoices.issue", () => {
	const invoice = (orderId: string) =>
		broker.call<any, any>("invoices.issue", {
			orderId,
			userId: "user1",
			items: [{ productId: "p1", sku: "SKU-1", name: "Thing", unitPrice: 1_000, quantity: 2, lineTotal: 2_000 }],
			subtotal: 2_000,
			discount: 0,
			shipping: 499,
			tax: 0,
			total: 2_499,
			currency: "USD",
			country: "US",
		});

	it("numbers invoices uniquely and increasingly under concurrency, one per order", async () => {
		const ids = Array.from({ length: 40 }, nextOrderId);
		const issued = await Promise.all([...ids, ...ids.slice(0, 10)].map(invoice));
		const numberOf = new Map(issued.map(i => [i.orderId, i.number]));
		expect(numberOf.size).toBe(40);
		expect(new Set(numberOf.values()).size).toBe(40);
		for (const i of issued) expect(i.number).toBe(numberOf.get(i.orderId)); // a repeat answers the same invoice
		const next = await invoice(nextOrderId());
		expect(next.number > [...numberOf.values()].sort().at(-1)!).toBe(true);
		expect(next.number).toMatch(/^INV-\d{6}$/);
	});

	it("refuses a line with a field it does not know (422), issuing nothing", async () => {
		const orderId = nextOrderId();
		const line = {
			productId: "p1",
			sku: "SKU-1",
			name: "Thing",
			unitPrice: 1_000,
			quantity: 1,
			lineTotal: 1_000,
			colour: "red",
		};
		await expect(
			broker.call("invoices.issue", {
				orderId,
				userId: "user1",
				items: [line],
				subtotal: 1_000,
				discount: 0,
				shipping: 0,
				tax: 0,
				total: 1_000,
				currency: "USD",
				country: "US",
			}),
		).rejects.toMatchObject({ code: 422 });
		await expect(
			broker.call("invoices.forOrder", { id: orderId }, { meta: { user: { id: "user1", role: "customer" } } }),
		).rejects.toMatchObject({ code: 404 });
	});

	it("shows an invoice to its owner only", async () => {
		const orderId = nextOrderId();
		await invoice(orderId);
		expect(
			await broker.call(
				"invoices.forOrder",
				{ id: orderId },
				{ meta: { user: { id: "user1", role: "customer" } } },
			),
		).toMatchObject({ orderId, total: 2_499 });
		await expect(
			broker.call("invoices.forOrder", { id: orderId }, { meta: { user: { id: "user2", role: "customer" } } }),
		).rejects.toMatchObject({ code: 404 });
	});
});
