/**
 * Resilience as the client sees it (moleculer.config.ts, README "Resilience, configured on
 * purpose"), over HTTP: the gateway's 504 after a call's budget (3 s, 15 s for sign-up and login),
 * its 503 for a full hashing queue, the no-retry rules across nodes, and the circuit breaker
 * counting timeouts: a replica that keeps timing out stops being called. Faults
 * (test/helpers/faults.ts) hold or fail handlers; several nodes share a process on the Fake
 * transporter (test/helpers/brokers.ts). Bounds are loose: a timer never fires early, and
 * "before the held handler finished".
 */
import type { ServiceBroker } from "moleculer";
import { gatewayOf, TestCluster } from "../helpers/brokers";
import { Faults, swallowRequests } from "../helpers/faults";
import { waitFor, waitForActions } from "../helpers/process";
import ApiService from "../../services/api/api.service";
import CatalogService from "../../services/api/catalog.service";
import InvoicesService from "../../services/invoices/invoices.service";
import OrdersService from "../../services/orders/orders.service";
import PaymentProviderService from "../../services/payment-provider/payment-provider.service";
import PaymentsService from "../../services/payments/payments.service";
import PricingService from "../../services/pricing/pricing.service";
import ProductsService from "../../services/products/products.service";
import UsersService from "../../services/users/users.service";

const unique = () => Math.random().toString(36).slice(2, 10);
const ADMIN = { email: "admin@moleshop.test", password: "admin-password" };

describe("one node, through the gateway", () => {
	const faults = new Faults();
	const cluster = new TestCluster(null);
	let gateway: ReturnType<typeof gatewayOf>;
	let admin: string;

	beforeAll(async () => {
		gateway = gatewayOf(
			await cluster.start("gateway", [UsersService, ProductsService, ApiService, CatalogService], faults),
		);
		admin = (await gateway.request("POST", "/api/v1/auth/login", { body: ADMIN })).body.token;
	});
	beforeEach(() => faults.reset());
	afterEach(() => faults.release());
	afterAll(() => cluster.stop());

	/** Until no run of `action` is in its handler any more. */
	const settled = (action: string) =>
		waitFor(async () => faults.active(action) === 0, 20_000, `the runs of ${action} to end`);

	it("answers 504 after 3 s for an action without a timeout of its own, before the handler finished", async () => {
		faults.hold("products.create"); // never retried: one attempt
		const res = await gateway.request("POST", "/api/v1/products", {
			token: admin,
			body: { sku: `HELD-${unique()}`, name: "Held", price: 100, category: "test" },
		});
		expect(res.status).toBe(504);
		expect(res.body).toMatchObject({ code: 504, type: "TIMEOUT" });
		expect(res.ms).toBeGreaterThanOrEqual(2_990);
		expect(res.ms).toBeLessThan(10_000);
		expect(faults.active("products.create")).toBe(1);
		faults.release();
		await settled("products.create");
	});

	it("tries a read that does not answer 4 times, 3 s each, and answers 504 within about 12 s", async () => {
		faults.hold("catalog.list"); // the action GET /products calls
		const res = await gateway.request("GET", `/api/v1/products?q=held-${unique()}`); // not cached yet
		expect(res.status).toBe(504);
		expect(res.body).toMatchObject({ code: 504, type: "TIMEOUT" });
		expect(faults.runsOf("catalog.list").map(run => run.timeout)).toEqual([3_000, 3_000, 3_000, 3_000]);
		expect(res.ms).toBeGreaterThanOrEqual(4 * 3_000);
		expect(res.ms).toBeLessThan(20_000);
		faults.release();
		await settled("catalog.list");
	}, 40_000);

	it("gives sign-up and login 15 s, not 3 s: sign-up answers 504 after 15 s, a login is tried again after 15 s", async () => {
		faults.hold("users.register");
		faults.hold("users.login");
		const signUp = gateway.request("POST", "/api/v1/auth/register", {
			body: { name: "Held", email: `held-${unique()}@moleshop.test`, password: "correct horse battery" },
		});
		const login = gateway.request("POST", "/api/v1/auth/login", {
			body: { email: `held-${unique()}@moleshop.test`, password: "correct horse battery" },
		});
		const res = await signUp;
		expect(res.status).toBe(504);
		expect(res.body).toMatchObject({ code: 504, type: "TIMEOUT" });
		expect(res.ms).toBeGreaterThanOrEqual(14_990);
		expect(faults.runsOf("users.register").map(run => run.timeout)).toEqual([15_000]);
		// A login is retried like any read: its first attempt was cut at 15 s (then 0.1 s of backoff).
		await waitFor(async () => faults.runs("users.login") >= 2, 10_000, "the login to be tried again");
		const [first, second] = faults.runsOf("users.login");
		expect(first.timeout).toBe(15_000);
		expect(second.startedAt - first.startedAt).toBeGreaterThanOrEqual(14_990);
		faults.release();
		expect((await login).status).toBe(401); // no such account, verified against the dummy hash
		await settled("users.register");
	}, 60_000);

	it("answers 503 with Retry-After to the sign-ups beyond 4 hashing and 100 queued", async () => {
		faults.hold("users.register"); // inside the bulkhead: 4 held in the handler, then the queue fills
		const answers = Array.from({ length: 110 }, () =>
			gateway.request("POST", "/api/v1/auth/register", {
				body: { name: "Crowd", email: `crowd-${unique()}@moleshop.test`, password: "correct horse battery" },
			}),
		);
		const refused: any[] = [];
		answers.forEach(p => p.then(res => res.status === 503 && refused.push(res)));
		// The queue fills before any is refused, so 6 refused means all 110 arrived: 4 in the handler, 100
		// queued — or more than 4 in the handler, without a bulkhead.
		await waitFor(
			async () =>
				faults.active("users.register") > 4 || (refused.length === 6 && faults.active("users.register") === 4),
			20_000,
			"the queue to fill",
		);
		expect(faults.mostAtOnce("users.register")).toBe(4);
		faults.release();
		const statuses = (await Promise.all(answers)).map(res => res.status);
		expect(statuses.filter(status => status === 201)).toHaveLength(104);
		expect(statuses.filter(status => status === 503)).toHaveLength(6);
		for (const res of refused) {
			expect(res.headers.get("retry-after")).toBe("1");
			expect(res.body).toMatchObject({ code: 503, type: "SERVICE_UNAVAILABLE" });
		}
	}, 40_000);
});

describe("the gateway on one node, the services on another", () => {
	const faults = new Faults();
	const cluster = new TestCluster();
	let gateway: ReturnType<typeof gatewayOf>;
	let token: string;
	let product: any;

	beforeAll(async () => {
		// What a checkout by items takes: were it ever run a second time, that run would place the order.
		const services = [UsersService, ProductsService, PricingService, OrdersService];
		await cluster.start(
			"services",
			[...services, PaymentsService, PaymentProviderService, InvoicesService],
			faults,
		);
		const gatewayNode = await cluster.start("gateway", [ApiService, CatalogService]);
		gateway = gatewayOf(gatewayNode);
		await waitForActions(gatewayNode, ["users.register", "products.get", "orders.create", "invoices.issue"]);
		const email = `remote-${unique()}@moleshop.test`;
		const res = await gateway.request("POST", "/api/v1/auth/register", {
			body: { name: "Remote", email, password: "correct horse battery" },
		});
		token = res.body.token;
		product = (await gateway.request("GET", "/api/v1/products?pageSize=1")).body.rows[0];
	}, 60_000);
	beforeEach(() => faults.reset());
	afterAll(() => cluster.stop());

	it("never runs a checkout twice: a retryable error of its first run is the answer (503), and no order is placed", async () => {
		faults.failFirst("orders.create", 1);
		const res = await gateway.request("POST", "/api/v1/orders", {
			token,
			body: { items: [{ productId: product.id, quantity: 1 }], paymentMethod: "pm_card_visa" },
		});
		expect(res.status).toBe(503);
		expect(faults.runs("orders.create")).toBe(1);
		expect((await gateway.request("GET", "/api/v1/orders", { token })).body.total).toBe(0);
	});

	it("never runs a sign-up twice", async () => {
		faults.failFirst("users.register", 1);
		const res = await gateway.request("POST", "/api/v1/auth/register", {
			body: { name: "Once", email: `once-${unique()}@moleshop.test`, password: "correct horse battery" },
		});
		expect(res.status).toBe(503);
		expect(faults.runs("users.register")).toBe(1);
	});

	it("calls a read again on another try, and answers it", async () => {
		faults.failFirst("products.get", 1); // the catalog beside the gateway reads the product from the other node
		const res = await gateway.request("GET", `/api/v1/products/${product.id}`);
		expect(res.status).toBe(200);
		expect(res.body.id).toBe(product.id);
		expect(faults.runs("products.get")).toBe(2);
	});
});

describe("the circuit breaker, counting timeouts", () => {
	let cluster: TestCluster;
	let gatewayNode: ServiceBroker;
	let stuckNode: ServiceBroker;
	afterEach(async () => {
		// The stuck replica leaves first: the gateway then rejects the calls it still waits for from it. Those that
		// ended in an error already, Moleculer's ErrorHandler dropped without settling, so its ContextTracker would
		// keep them and hold the gateway's graceful stop for the whole shutdownTimeout (10 s): forget them.
		await cluster.stopNode(stuckNode);
		const tracked: any[] = (gatewayNode as any)._trackedContexts;
		tracked.splice(0, tracked.length, ...tracked.filter(ctx => ctx.nodeID !== stuckNode.nodeID));
		await cluster.stop();
	});

	/**
	 * A gateway node and pricing replicas; the first replica gets its quote requests and never answers them,
	 * so only the gateway's own timeout ends them (the case the Timeout-before-CircuitBreaker order is for).
	 */
	async function start(replicas: number) {
		cluster = new TestCluster();
		const faults = Array.from({ length: replicas }, () => new Faults());
		const nodes: ServiceBroker[] = [];
		for (const [i, f] of faults.entries()) nodes.push(await cluster.start(`pricing-${i + 1}`, [PricingService], f));
		gatewayNode = await cluster.start("gateway", [ApiService]);
		await waitFor(
			async () => gatewayNode.registry.getActionEndpoints("pricing.quote")?.count() === replicas,
			30_000,
			"the gateway to see every pricing replica",
		);
		stuckNode = nodes[0];
		const stuck = swallowRequests(stuckNode, "pricing.quote");
		const opened: any[] = [];
		gatewayNode.localBus.on("$circuit-breaker.opened", (event: any) => opened.push(event));
		const gateway = gatewayOf(gatewayNode);
		const quote = () => gateway.request("POST", "/api/v1/quote", { body: { items: [] } });
		/** Send `batch` quotes at once until the stuck replica's circuit is open at the gateway. */
		const openTheCircuit = (batch: number) =>
			waitFor(
				async () => {
					await Promise.all(Array.from({ length: batch }, quote));
					return opened.some(e => e.nodeID === nodes[0].nodeID && e.action === "pricing.quote");
				},
				30_000,
				"the circuit of the stuck replica to open",
			);
		return { faults, stuck, quote, openTheCircuit };
	}

	it("stops calling a replica whose quotes time out: its circuit opens and the calls go to the other one", async () => {
		const { faults, stuck, quote, openTheCircuit } = await start(2);
		await openTheCircuit(10); // 5 to each replica: the 5 timeouts of the stuck one open its circuit
		const stuckCalls = stuck.count;
		const otherRuns = faults[1].runs("pricing.quote");
		// Within the 5 s before the circuit lets a trial call through:
		const answers = [];
		for (let i = 0; i < 10; i++) answers.push(await quote());
		expect(answers.map(res => res.status)).toEqual(Array(10).fill(200));
		expect(Math.max(...answers.map(res => res.ms))).toBeLessThan(1_000); // no 3 s timeout on the way
		expect(stuck.count).toBe(stuckCalls); // not called any more
		expect(faults[1].runs("pricing.quote")).toBe(otherRuns + 10);
	}, 60_000);

	it("answers 503 at once when the only replica's circuit is open", async () => {
		const { stuck, quote, openTheCircuit } = await start(1);
		await openTheCircuit(5);
		const stuckCalls = stuck.count;
		for (let i = 0; i < 5; i++) {
			const res = await quote();
			expect(res.status).toBe(503);
			expect(res.headers.get("retry-after")).toBe("1");
			expect(res.body).toMatchObject({ code: 503, type: "SERVICE_UNAVAILABLE" });
			expect(res.ms).toBeLessThan(1_000);
		}
		expect(stuck.count).toBe(stuckCalls);
	}, 60_000);
});
