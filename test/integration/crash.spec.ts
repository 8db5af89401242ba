/**
 * The orders process dies (SIGKILL) after an order reserved its stock, while
 * its charge is under way. When it comes back, the recovery sweep drives the
 * order to a final state: paid, charged exactly once, its stock taken, an
 * invoice issued and the order.paid event delivered.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import brokerConfig from "../../moleculer.config";
import { checkInvariant } from "../helpers/invariant";
import { describeWithNats, startNatsServer, type NatsServer } from "../helpers/nats";
import {
	freePort,
	json,
	startNode,
	waitFor,
	waitForActions,
	waitUntilReady,
	type NodeProcess,
} from "../helpers/process";

describeWithNats("a crash of the orders process mid-checkout", () => {
	let nats: NatsServer;
	let probe: ServiceBroker;
	let dataDir: string;
	let port: number;
	const nodes: NodeProcess[] = [];
	const namespace = `crash-${process.pid}`;

	function start(services: string, extra: Record<string, string> = {}) {
		const node = startNode({
			TRANSPORTER: nats.url,
			NAMESPACE: namespace,
			DATA_DIR: dataDir,
			JWT_SECRET: "crash-test",
			ADMIN_EMAIL: "admin@crash.test",
			ADMIN_PASSWORD: "admin-password",
			SERVICES: services,
			...extra,
		});
		nodes.push(node);
		return node;
	}
	const startOrders = () => start("orders", { ORDER_RECOVERY_AFTER_MS: "2000" });

	beforeAll(async () => {
		dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "moleshop-crash-"));
		nats = await startNatsServer();
		port = await freePort();
		// Every charge takes 3 s at the provider: the window in which the orders process dies.
		start("payment-provider", { PAYMENT_LATENCY_MS: "3000" });
		start("api,events,users,products,pricing,carts,payments,invoices,notifications,analytics", {
			PORT: String(port),
			PAYMENT_TIMEOUT_MS: "8000",
		});
		startOrders();
		probe = new ServiceBroker({
			...brokerConfig,
			nodeID: `probe-${process.pid}`,
			namespace,
			transporter: { type: "NATS", options: { url: nats.url } },
			logger: false,
		});
		await probe.start();
		await waitUntilReady(port, 90_000);
		await waitForActions(probe, [
			"users.get",
			"products.reserveStock",
			"pricing.quote",
			"payments.charge",
			"invoices.issue",
			"payment-provider.charge",
			"orders.create",
		]);
	}, 120_000);

	afterAll(async () => {
		await probe?.stop();
		await Promise.all(nodes.map(node => node.stop()));
		await nats?.destroy();
		fs.rmSync(dataDir, { recursive: true, force: true });
	}, 60_000);

	it("recovers the order to paid, charged once, with its stock, invoice and event", async () => {
		const admin = (
			await json(port, "POST", "/auth/login", { email: "admin@crash.test", password: "admin-password" })
		).body.token;
		const product = (
			await json(
				port,
				"POST",
				"/products",
				{ sku: "CRASH-1", name: "Crash", price: 1_500, category: "test", stock: 5 },
				admin,
			)
		).body;
		const customer = (
			await json(port, "POST", "/auth/register", { name: "Crash", email: "crash@x.io", password: "password123" })
		).body;

		const checkout = json(
			port,
			"POST",
			"/orders",
			{ items: [{ productId: product.id, quantity: 2 }], paymentMethod: "pm_card_visa" },
			customer.token,
		);
		const stock = async () => (await probe.call<any[], object>("products.getMany", { ids: [product.id] }))[0].stock;
		await waitFor(async () => (await stock()) === 3, 20_000, "the stock to be reserved");
		const orders = nodes[2];
		orders.child.kill("SIGKILL");
		expect((await checkout).status).toBeGreaterThanOrEqual(500); // the client never learnt the outcome

		startOrders();
		const paid = await waitFor(
			async () => {
				const list = (await json(port, "GET", "/orders", undefined, customer.token)).body;
				return list?.rows?.[0]?.status === "paid" && list.rows[0];
			},
			60_000,
			"the recovered order to be paid",
		);

		expect(paid.timeline.map((t: any) => t.status)).toEqual(["reserved", "paid"]);
		expect((await json(port, "GET", `/orders/${paid.id}/invoice`, undefined, customer.token)).body.number).toBe(
			paid.invoiceNumber,
		);
		await checkInvariant(probe, { [product.id]: 5 });
		expect(await probe.call("payments.forOrder", { orderId: paid.id })).toEqual([
			expect.objectContaining({ kind: "charge", status: "succeeded" }),
		]);
		await waitFor(
			async () => {
				const sent = (await json(port, "GET", "/notifications", undefined, customer.token)).body.rows;
				return sent.some(
					(m: any) => m.template === "order_confirmation" && m.body.includes(paid.invoiceNumber),
				);
			},
			30_000,
			"the order confirmation",
		);
	}, 120_000);
});
