/**
 * Durable domain events over a real NATS with JetStream, between processes:
 * - an event delivered twice has one effect in each consumer;
 * - a handler that keeps failing is retried with backoff, dead-lettered with
 *   its error, and an admin redrives it once the cause is gone;
 * - orders paid while NATS is down yield every event once it is back.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import { channelsMiddleware } from "../../platform/channels";
import { domainEvent, EVENT_TYPES } from "../../contracts/events";
import { lastSequence, waitForConsumers } from "../helpers/jetstream";
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
import { startSmtpServer, type TestSmtpServer } from "../helpers/smtp";

describeWithNats("durable events over NATS JetStream", () => {
	let nats: NatsServer;
	let smtp: TestSmtpServer;
	let publisher: ServiceBroker;
	let dataDir: string;
	let port: number;
	let admin: string;
	const nodes: NodeProcess[] = [];
	const namespace = `events-${process.pid}`;
	const today = () => new Date().toISOString().slice(0, 10);

	beforeAll(async () => {
		dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "moleshop-events-"));
		nats = await startNatsServer();
		smtp = await startSmtpServer();
		port = await freePort();
		const env = {
			TRANSPORTER: nats.url,
			NAMESPACE: namespace,
			DATA_DIR: dataDir,
			JWT_SECRET: "events-test",
			EVENT_MAX_RETRIES: "2",
			ADMIN_EMAIL: "admin@events.test",
			ADMIN_PASSWORD: "admin-password",
		};
		// Everything a checkout needs in one process (it keeps selling while NATS is away); the consumers in another.
		nodes.push(
			startNode({
				...env,
				SERVICES: "api,events,users,products,pricing,carts,orders,payment-provider,payments,invoices",
				PORT: String(port),
			}),
		);
		nodes.push(startNode({ ...env, SERVICES: "notifications,analytics", SMTP_URL: smtp.url }));
		publisher = new ServiceBroker({
			nodeID: `publisher-${process.pid}`,
			namespace,
			logger: false,
			transporter: { type: "NATS", options: { url: nats.url } },
			middlewares: [channelsMiddleware(EVENT_TYPES, nats.url) as any],
		});
		await publisher.start();
		await waitUntilReady(port, 90_000);
		await waitForActions(publisher, ["users.get", "notifications.list", "analytics.summary", "orders.create"]);
		admin = (await json(port, "POST", "/auth/login", { email: "admin@events.test", password: "admin-password" }))
			.body.token;
	}, 120_000);

	afterAll(async () => {
		await publisher?.stop();
		await Promise.all(nodes.map(node => node.stop()));
		await smtp?.close();
		await nats?.destroy();
		fs.rmSync(dataDir, { recursive: true, force: true });
	}, 60_000);

	const summary = async () =>
		(await json(port, "GET", `/analytics/summary?from=${today()}&to=${today()}`, undefined, admin)).body;
	const messages = async (token: string) =>
		(await json(port, "GET", "/notifications?pageSize=100", undefined, token)).body.rows as any[];
	const signUp = async (email: string) =>
		(await json(port, "POST", "/auth/register", { name: "Events", email, password: "password123" })).body;

	it("has one effect per consumer for an event delivered twice", async () => {
		const customer = await signUp("twice@events.test");
		const before = (await summary()).orders.paid;
		const paid = domainEvent("order.paid", {
			orderId: "twice0000000000000000001",
			userId: customer.user.id,
			items: [],
			subtotal: 900,
			discount: 0,
			shipping: 100,
			tax: 0,
			total: 1_000,
			currency: "USD",
			invoiceNumber: "INV-TWICE",
			paidAt: new Date().toISOString(),
		});
		await publisher.sendToChannel(paid.type, paid);
		await publisher.sendToChannel(paid.type, paid); // no msgID: JetStream stores and delivers it twice

		await waitFor(
			async () => (await messages(customer.token)).some(m => m.template === "order_confirmation"),
			20_000,
			"the confirmation",
		);
		await waitFor(async () => (await summary()).orders.paid >= before + 1, 20_000, "analytics to count the order");
		// Both consumers have handled and acknowledged both deliveries: a second effect would be there by now.
		const second = await lastSequence(nats.url, `${namespace}.order.paid`);
		await waitForConsumers(nats.url, `${namespace}.order.paid`, ["notifications", "analytics"], second);
		expect((await messages(customer.token)).filter(m => m.template === "order_confirmation")).toHaveLength(1);
		expect(smtp.received.filter(mail => mail.subject?.includes("INV-TWICE"))).toHaveLength(1);
		expect((await summary()).orders.paid).toBe(before + 1);
	}, 60_000);

	it("retries a failing handler, dead-letters it with its error, and redrives it for an admin", async () => {
		smtp.refuse = mail => mail.to !== undefined && JSON.stringify(mail.to).includes("bounce@events.test");
		const newUsersBefore = (await summary()).newUsers;
		const customer = await signUp("bounce@events.test");

		const deadLetters = async () =>
			(await json(port, "GET", "/admin/dead-letters", undefined, admin)).body.rows as any[];
		const letter = await waitFor(
			async () => (await deadLetters()).find(l => l.payload?.data?.userId === customer.user.id),
			30_000,
			"the dead letter",
		);
		expect(letter).toMatchObject({
			channel: `${namespace}.user.registered`,
			group: "notifications",
			deliveries: 2,
			error: expect.stringContaining("Mailbox unavailable"),
			payload: { type: "user.registered", version: 1 },
		});
		expect((await messages(customer.token)).find(m => m.template === "welcome")).toMatchObject({
			status: "failed",
			attempts: 2,
		});
		await waitFor(
			async () => (await summary()).newUsers === newUsersBefore + 1,
			20_000,
			"analytics to count the user",
		);
		expect((await json(port, "GET", "/admin/dead-letters", undefined, customer.token)).status).toBe(403);
		expect((await json(port, "POST", "/admin/dead-letters/999999/redrive", undefined, admin)).status).toBe(404);

		smtp.refuse = null;
		const redriven = await json(port, "POST", `/admin/dead-letters/${letter.seq}/redrive`, undefined, admin);
		expect(redriven.status).toBe(200);
		await waitFor(
			async () => (await messages(customer.token)).find(m => m.template === "welcome")?.status === "sent",
			20_000,
			"the welcome to be sent",
		);
		expect((await messages(customer.token)).find(m => m.template === "welcome").attempts).toBe(3);
		expect((await deadLetters()).some(l => l.seq === letter.seq)).toBe(false);
		// Analytics has handled and acknowledged the redriven message too (it is the last of its channel).
		const redrivenSeq = await lastSequence(nats.url, `${namespace}.user.registered`);
		await waitForConsumers(nats.url, `${namespace}.user.registered`, ["notifications", "analytics"], redrivenSeq);
		expect((await summary()).newUsers).toBe(newUsersBefore + 1); // analytics saw the redriven event and skipped it
	}, 90_000);

	it("delivers every event of orders paid while NATS was down, once it is back", async () => {
		const customer = await signUp("outage@events.test");
		const product = (await json(port, "GET", "/products?q=mug")).body.rows[0];
		await waitFor(
			async () => (await messages(customer.token)).some(m => m.template === "welcome"),
			20_000,
			"the welcome",
		);
		const paidBefore = (await summary()).orders.paid;

		const checkoutNode = nodes[0];
		const logged = checkoutNode.output().length;
		await nats.stop();
		const orders = [];
		for (let i = 0; i < 3; i++) {
			const res = await json(
				port,
				"POST",
				"/orders",
				{ items: [{ productId: product.id, quantity: 1 }], paymentMethod: "pm_card_visa" },
				customer.token,
			);
			expect(res.status).toBe(201);
			orders.push(res.body);
		}
		// The relay tries, and fails, to publish meanwhile (its publish times out): the events stay in the outbox.
		await waitFor(
			async () => /ORDERS: Outbox relay could not publish/.test(checkoutNode.output().slice(logged)),
			30_000,
			"the orders relay to fail",
		);
		await nats.start();

		await waitFor(
			async () => {
				const confirmations = (await messages(customer.token).catch(() => [])).filter(
					m => m.template === "order_confirmation",
				);
				return confirmations.length >= 3;
			},
			60_000,
			"three order confirmations",
		);
		await waitFor(
			async () => (await summary()).orders?.paid >= paidBefore + 3,
			30_000,
			"analytics to count the three orders",
		);
		// Relayed late, and perhaps more than once, but handled once: both consumers are done with the channel.
		const last = await lastSequence(nats.url, `${namespace}.order.paid`);
		await waitForConsumers(nats.url, `${namespace}.order.paid`, ["notifications", "analytics"], last);
		const confirmations = (await messages(customer.token)).filter(m => m.template === "order_confirmation");
		expect(confirmations).toHaveLength(3);
		expect((await summary()).orders.paid).toBe(paidBefore + 3);
		const sent = confirmations.map(m => m.body).join("\n");
		for (const order of orders) expect(sent).toContain(order.invoiceNumber);
	}, 120_000);
});
