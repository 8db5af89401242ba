/**
 * Request timeouts as configured (moleculer.config.ts, README "Timeouts"): a call gets 3 s unless
 * its action says otherwise, and a call nested inside another gets only what is left of that
 * call's budget — none at all once it is spent, for its retries too. Faults (test/helpers/faults.ts) hold or delay
 * handlers inside their budget; the bounds are loose (a timer never fires early; "before the held
 * handler finished"), the error types are what is asserted.
 */
import { Errors, type ServiceBroker } from "moleculer";
import { TestCluster } from "../helpers/brokers";
import { Faults } from "../helpers/faults";
import { waitFor } from "../helpers/process";
import ProductsService from "../../services/products/products.service";
import CatalogService from "../../services/api/catalog.service";

/** A caller that asks products.get with the default retry policy (the catalog tries its reads once). */
const OuterService = {
	name: "outer",
	actions: {
		view(ctx: any) {
			return ctx.call("products.get", { id: ctx.params.id });
		},
	},
};

const faults = new Faults();
const cluster = new TestCluster(null);
let broker: ServiceBroker;
let product: any;

const unique = () => Math.random().toString(36).slice(2, 10).toUpperCase();
/** Until no run of `action` is in its handler any more (so that nothing held outlives the test). */
const settled = (action: string) =>
	waitFor(async () => faults.active(action) === 0, 20_000, `the runs of ${action} to end`);

beforeAll(async () => {
	broker = await cluster.start("timeouts", [ProductsService, CatalogService, OuterService], faults);
	product = (await broker.call<any, any>("products.list", { pageSize: 1 })).rows[0];
});
beforeEach(() => faults.reset());
afterEach(() => faults.release());
afterAll(() => cluster.stop());

it("cuts a call at 3 s when its action has no timeout of its own, while the handler still runs", async () => {
	faults.hold("products.create"); // no timeout of its own, and never retried: one attempt to time
	const sent = Date.now();
	const err: any = await broker
		.call("products.create", { sku: `SLOW-${unique()}`, name: "Slow", price: 100, category: "test" })
		.catch(e => e);
	const elapsed = Date.now() - sent;
	expect(err).toBeInstanceOf(Errors.RequestTimeoutError);
	expect(err).toMatchObject({ code: 504, type: "REQUEST_TIMEOUT" });
	expect(faults.runsOf("products.create")[0].timeout).toBe(3_000);
	expect(elapsed).toBeGreaterThanOrEqual(2_990);
	expect(elapsed).toBeLessThan(10_000);
	expect(faults.active("products.create")).toBe(1); // cut, not finished
	faults.release();
	await settled("products.create");
});

describe("a nested call", () => {
	it("gets what is left of its parent's 3 s, and is cut there", async () => {
		// catalog.view spends 2 s of its budget, then asks products.get, which does not answer.
		faults.delay("catalog.view", 2_000);
		faults.hold("products.get");
		const sent = Date.now();
		// One attempt of the outer call (retries: 0).
		const err: any = await broker
			.call("catalog.view", { id: product.id }, { retries: 0, meta: { $cache: false } })
			.catch(e => e);
		expect(err).toBeInstanceOf(Errors.RequestTimeoutError);
		expect(Date.now() - sent).toBeGreaterThanOrEqual(2_990);
		// The nested call had about the 1 s that was left (timers round to the millisecond), not 3 s of its own.
		const [nested] = faults.runsOf("products.get");
		expect(nested.timeout).toBeGreaterThan(0);
		expect(nested.timeout).toBeLessThan(1_100);
		expect(faults.runs("products.get")).toBe(1); // the catalog tries it once: the caller of catalog.view retries
		faults.release();
		await settled("catalog.view");
	});

	it("is not tried again once its caller's budget is spent: the caller ends with that attempt's timeout", async () => {
		// outer.view spends 2 s of its 3 s, then asks products.get (retried by default), which does not answer.
		faults.delay("outer.view", 2_000);
		faults.hold("products.get");
		const err: any = await broker.call("outer.view", { id: product.id }, { retries: 0 }).catch(e => e);
		expect(err).toBeInstanceOf(Errors.RequestTimeoutError);
		await settled("outer.view");
		// The first attempt had about the 1 s that was left, and was cut there. Moleculer's Retry would give
		// a second attempt a whole timeout of its own again; with nothing left of the caller's budget it is
		// not made (platform/middlewares/retry-elsewhere.ts), so outer.view ended with the attempt's timeout.
		expect(faults.runsOf("products.get")[0].timeout).toBeLessThan(1_100);
		expect(faults.runs("products.get")).toBe(1);
		expect(faults.runsOf("outer.view")[0].error).toBeInstanceOf(Errors.RequestTimeoutError);
		expect(faults.runsOf("outer.view")[0].error.data).toMatchObject({ action: "products.get" });
		faults.release();
	});

	it("is not made at all once its parent's budget is spent: REQUEST_SKIPPED", async () => {
		faults.delay("catalog.view", 3_500); // past its 3 s before it asks products.get
		const err: any = await broker
			.call("catalog.view", { id: product.id }, { retries: 0, meta: { $cache: false } })
			.catch(e => e);
		expect(err).toBeInstanceOf(Errors.RequestTimeoutError);
		await settled("catalog.view");
		expect(faults.runsOf("catalog.view")[0].error).toBeInstanceOf(Errors.RequestSkippedError);
		expect(faults.runs("products.get")).toBe(0);
	});
});
