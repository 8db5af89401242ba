/**
 * The default mode, with no infrastructure: what `npm start` writes to the embedded
 * store (NeDB under DATA_DIR) survives a restart; a REPL joins it over Moleculer's
 * TCP transporter; a second instance of a stateful service refuses to start.
 * On the MongoDB path the same restart keeps its data in MongoDB, and nothing under DATA_DIR.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { config } from "../../platform/config";
import { freePort, json, startNode, startRepl, waitFor, waitUntilReady, type NodeProcess } from "../helpers/process";
import { itOnEmbeddedStore } from "../helpers/store";

let dataDir: string;
let node: NodeProcess | undefined;

beforeAll(() => {
	dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "moleshop-data-"));
});
afterAll(async () => {
	await node?.stop();
	fs.rmSync(dataDir, { recursive: true, force: true });
});

it("keeps accounts, orders and stock across a restart", async () => {
	const port = await freePort();
	const env = { DATA_DIR: dataDir, PORT: String(port), JWT_SECRET: "persistence-test" };

	node = startNode(env);
	await waitUntilReady(port);
	const registered = await json(port, "POST", "/auth/register", {
		name: "Keeper",
		email: "keeper@x.io",
		password: "password123",
	});
	expect(registered.status).toBe(201);
	const product = (await json(port, "GET", "/products?q=hoodie")).body.rows[0];
	const order = await json(
		port,
		"POST",
		"/orders",
		{ items: [{ productId: product.id, quantity: 2 }], paymentMethod: "pm_card_visa" },
		registered.body.token,
	);
	expect(order.status).toBe(201);
	const catalogSize = (await json(port, "GET", "/products")).body.total;
	expect(await node.stop()).toBe(0);
	expect(fs.readdirSync(dataDir).sort()).toEqual(
		config.mongoUri
			? []
			: [
					"analytics.db",
					"carts.db",
					"invoices.db",
					"notifications.db",
					"orders.db",
					"payments.db",
					"products.db",
					"provider_charges.db",
					"users.db",
				],
	);

	node = startNode(env);
	await waitUntilReady(port);
	const login = await json(port, "POST", "/auth/login", { email: "keeper@x.io", password: "password123" });
	expect(login.status).toBe(200);
	expect(login.body.user.id).toBe(registered.body.user.id);
	const orders = await json(port, "GET", "/orders", undefined, login.body.token);
	expect(orders.body.rows).toEqual([order.body]);
	const invoice = await json(port, "GET", `/orders/${order.body.id}/invoice`, undefined, login.body.token);
	expect(invoice.body.number).toBe(order.body.invoiceNumber);
	expect((await json(port, "GET", `/products/${product.id}`)).body.stock).toBe(product.stock - 2);
	expect((await json(port, "GET", "/products")).body.total).toBe(catalogSize); // not seeded twice
});

describe("the default mode (TCP transporter, NeDB)", () => {
	let node: NodeProcess;
	let dir: string;
	const namespace = `default-${process.pid}`;
	beforeAll(async () => {
		dir = fs.mkdtempSync(path.join(os.tmpdir(), "moleshop-default-"));
		const port = await freePort();
		node = startNode({ DATA_DIR: dir, PORT: String(port), NAMESPACE: namespace });
		await waitUntilReady(port);
	}, 90_000);
	afterAll(async () => {
		await node?.stop();
		fs.rmSync(dir, { recursive: true, force: true });
	});

	it("lets a REPL join with no infrastructure", async () => {
		const repl = await startRepl({ NAMESPACE: namespace, SERVICEDIR: "" }, dir);
		try {
			const nodeID = `${os.hostname().toLowerCase()}-${node.child.pid}`;
			await waitFor(
				async () => (await repl.command("nodes")).includes(nodeID),
				30_000,
				"the REPL to discover the node",
			);
			expect(await repl.command("stock MUG-001")).toMatch(/MUG-001.*Moleculer Mug/);
		} finally {
			await repl.quit();
		}
	}, 60_000);

	const SHARED = "with MongoDB every instance shares the data, so any number may run";

	itOnEmbeddedStore(
		"refuses a second instance of a stateful service on the same data, naming the node that has it",
		SHARED,
		async () => {
			const second = startNode({ DATA_DIR: dir, SERVICES: "products", NAMESPACE: `other-${process.pid}` });
			expect(await new Promise(resolve => second.child.once("exit", resolve))).not.toBe(0);
			expect(second.output()).toContain(
				`Refusing to start 'products': node '${os.hostname().toLowerCase()}-${node.child.pid}' already runs it`,
			);
			expect(second.output()).toContain("MONGO_URI");
		},
		60_000,
	);

	itOnEmbeddedStore(
		"lets exactly one of two instances starting at the same moment have the data",
		SHARED,
		async () => {
			const fresh = fs.mkdtempSync(path.join(os.tmpdir(), "moleshop-race-"));
			const nodes = [0, 1].map(() =>
				startNode({ DATA_DIR: fresh, SERVICES: "carts", NAMESPACE: `race-${process.pid}` }),
			);
			try {
				const first = await Promise.race(
					nodes.map((n, i) => new Promise<number>(resolve => n.child.once("exit", () => resolve(i)))),
				);
				expect(nodes[first].output()).toContain("Refusing to start 'carts'");
				await new Promise(resolve => setTimeout(resolve, 1_000));
				expect(nodes[1 - first].child.exitCode).toBeNull();
			} finally {
				await Promise.all(nodes.map(n => n.stop()));
				fs.rmSync(fresh, { recursive: true, force: true });
			}
		},
		60_000,
	);
});
