/**
 * The retry policy, action by action (moleculer.config.ts, README "Retries"): on a retryable error
 * the broker calls an ordinary read, or an idempotent saga step, again — three more times, with
 * backoff — while the actions that must not run twice (checkout, cancellation, stock reservation,
 * sign-up, product create and delete, the provider's charge and refund, a redrive) run once and
 * answer the error. Faults (test/helpers/faults.ts) fail the first runs of an action and count how
 * often its handler was entered.
 */
import { Errors, type ServiceBroker } from "moleculer";
import mongoose from "mongoose";
import { TestCluster } from "../helpers/brokers";
import { Faults } from "../helpers/faults";
import { waitFor } from "../helpers/process";
import { ALL_SERVICES } from "../helpers/shop";

const faults = new Faults();
const cluster = new TestCluster(null);
let broker: ServiceBroker;
let customer: { meta: { user: { id: string; role: "customer" } } };
let product: any;
let paidOrder: any;
let removable: any;

const newId = () => new mongoose.Types.ObjectId().toHexString();
const unique = () => Math.random().toString(36).slice(2, 10).toUpperCase();
const newProduct = (stock = 50) =>
	broker.call<any, any>("products.create", {
		sku: `RETRY-${unique()}`,
		name: "Retry test product",
		price: 1_000,
		category: "test",
		stock,
	});
const checkout = (paymentMethod = "pm_card_visa") =>
	broker.call<any, any>(
		"orders.create",
		{ items: [{ productId: product.id, quantity: 1 }], paymentMethod },
		customer,
	);
const stock = async () =>
	(await broker.call<any, any>("products.get", { id: product.id }, { meta: { $cache: false } })).stock;

beforeAll(async () => {
	broker = await cluster.start("retries", ALL_SERVICES, faults);
	const { user } = await broker.call<any, any>("users.register", {
		name: "Retried",
		email: `retried-${process.pid}@moleshop.test`,
		password: "correct horse battery",
	});
	customer = { meta: { user: { id: user.id, role: "customer" } } };
	product = await newProduct();
	removable = await newProduct();
	paidOrder = await checkout();
	expect(paidOrder.status).toBe("paid");
});
beforeEach(() => faults.reset()); // counts start at each test
afterEach(() => faults.release());
afterAll(() => cluster.stop());

describe("an action that must not run twice", () => {
	// [action, params, whether the signed-in customer calls it]: every row full, or Jest takes the test for a `done` one.
	const cases: Array<[string, () => object, boolean]> = [
		[
			"orders.create",
			() => ({ items: [{ productId: product.id, quantity: 1 }], paymentMethod: "pm_card_visa" }),
			true,
		],
		["orders.cancel", () => ({ id: paidOrder.id }), true],
		["products.reserveStock", () => ({ orderId: newId(), items: [{ productId: product.id, quantity: 1 }] }), false],
		[
			"users.register",
			() => ({ name: "Once", email: `once-${unique()}@moleshop.test`, password: "long enough" }),
			false,
		],
		["products.create", () => ({ sku: `ONCE-${unique()}`, name: "Once", price: 100, category: "test" }), false],
		["products.remove", () => ({ id: removable.id }), false],
		[
			"payment-provider.charge",
			() => ({ key: `charge:${newId()}`, amount: 100, currency: "USD", paymentMethod: "pm_card_visa" }),
			false,
		],
		["payment-provider.refund", () => ({ key: `refund:${newId()}`, chargeId: "ch_unknown", amount: 100 }), false],
		["events.redrive", () => ({ seq: 1 }), false],
	];

	it.each(cases)("%s runs once on a retryable error, and answers it", async (action, params, signedIn) => {
		faults.failFirst(action, 1);
		const err = await broker.call(action, params(), signedIn ? customer : {}).catch(e => e);
		expect(err).toBeInstanceOf(Errors.QueueIsFullError);
		expect(faults.runs(action)).toBe(1);
	});

	it("products.reserveStock cut by its timeout is not run again beside the attempt still taking stock", async () => {
		faults.hold("products.reserveStock");
		const orderId = newId();
		const items = [{ productId: product.id, quantity: 1 }];
		const err = await broker.call("products.reserveStock", { orderId, items }).catch(e => e);
		expect(err).toBeInstanceOf(Errors.RequestTimeoutError);
		expect(faults.active("products.reserveStock")).toBe(1); // the first attempt still runs...
		expect(faults.runs("products.reserveStock")).toBe(1); // ...and no second one beside it
		faults.release();
		await waitFor(async () => faults.active("products.reserveStock") === 0, 10_000, "the held reservation");
		await broker.call("products.releaseStock", { orderId, items });
	}, 20_000);
});

describe("a read", () => {
	// [action, params, whether the signed-in customer calls it]
	const cases: Array<[string, () => object, boolean]> = [
		["products.get", () => ({ id: product.id }), false],
		["products.list", () => ({ q: "retry test" }), false],
		["users.get", () => ({ id: customer.meta.user.id }), false],
		["pricing.quote", () => ({ items: [{ productId: product.id, quantity: 2 }] }), false],
		["carts.get", () => ({}), true],
		["orders.get", () => ({ id: paidOrder.id }), true],
	];

	it.each(cases)("%s is called again on a retryable error, and answers", async (action, params, signedIn) => {
		faults.failFirst(action, 1);
		// Past the cache, so that the handler is what answers.
		const meta = { ...(signedIn && customer.meta), $cache: false };
		await expect(broker.call(action, params(), { meta })).resolves.toBeTruthy();
		expect(faults.runs(action)).toBe(2);
	});

	it("is tried three more times, with backoff (0.1, 0.2, 0.4 s), then answers the error", async () => {
		faults.failFirst("products.get", 4);
		const err = await broker.call("products.get", { id: product.id }, { meta: { $cache: false } }).catch(e => e);
		expect(err).toBeInstanceOf(Errors.QueueIsFullError);
		const starts = faults.runsOf("products.get").map(run => run.startedAt);
		expect(starts).toHaveLength(4);
		const gaps = starts.slice(1).map((at, i) => at - starts[i]);
		// Timers never fire early; a few milliseconds of clock rounding.
		expect(gaps[0]).toBeGreaterThanOrEqual(95);
		expect(gaps[1]).toBeGreaterThanOrEqual(195);
		expect(gaps[2]).toBeGreaterThanOrEqual(395);
	});
});

describe("the saga's steps, idempotent per order", () => {
	it("are called again: a checkout and a cancellation whose every step fails once end paid, then cancelled", async () => {
		const paidSteps = ["pricing.quote", "payments.charge", "invoices.issue", "products.commitStock"];
		for (const step of paidSteps) faults.failFirst(step, 1);
		const before = await stock();
		const order = await checkout();
		expect(order).toMatchObject({ status: "paid", invoiceNumber: expect.any(String) });
		for (const step of paidSteps) expect([step, faults.runs(step)]).toEqual([step, 2]);
		expect(await stock()).toBe(before - 1);

		const cancelSteps = ["payments.refund", "products.restockOrder"];
		for (const step of cancelSteps) faults.failFirst(step, 1);
		const cancelled = await broker.call<any, any>("orders.cancel", { id: order.id }, customer);
		expect(cancelled).toMatchObject({ status: "cancelled", refunded: order.total });
		for (const step of cancelSteps) expect([step, faults.runs(step)]).toEqual([step, 2]);
		expect(await stock()).toBe(before);
	});

	it("are called again: a declined card's stock comes back though its release fails once", async () => {
		faults.failFirst("products.releaseStock", 1);
		const before = await stock();
		const err = await checkout("pm_card_chargeDeclined").catch(e => e);
		expect(err).toMatchObject({ code: 402, type: "PAYMENT_FAILED" });
		expect(faults.runs("products.releaseStock")).toBe(2);
		expect(await stock()).toBe(before);
	});
});
