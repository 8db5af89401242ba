/** What `npm start` writes to the embedded store (NeDB under DATA_DIR) survives a restart. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, startNode, waitUntilReady, type NodeProcess } from "../helpers/process";

let dataDir: string;
let node: NodeProcess | undefined;

beforeAll(() => {
	dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "moleshop-data-"));
});
afterAll(async () => {
	await node?.stop();
	fs.rmSync(dataDir, { recursive: true, force: true });
});

async function json(port: number, method: string, url: string, body?: unknown, token?: string) {
	const res = await fetch(`http://127.0.0.1:${port}/api/v1${url}`, {
		method,
		headers: { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	return { status: res.status, body: (await res.json().catch(() => null)) as any };
}

it("keeps accounts, orders and stock across a restart", async () => {
	const port = await freePort();
	const env = { DATA_DIR: dataDir, PORT: String(port), JWT_SECRET: "persistence-test" };

	node = startNode(env);
	await waitUntilReady(port);
	const registered = await json(port, "POST", "/auth/register", { name: "Keeper", email: "keeper@x.io", password: "password123" });
	expect(registered.status).toBe(201);
	const product = (await json(port, "GET", "/products?q=hoodie")).body.rows[0];
	const order = await json(port, "POST", "/orders", { items: [{ productId: product.id, quantity: 2 }] }, registered.body.token);
	expect(order.status).toBe(201);
	const catalogSize = (await json(port, "GET", "/products")).body.total;
	expect(await node.stop()).toBe(0);
	expect(fs.readdirSync(dataDir).sort()).toEqual(["carts.db", "orders.db", "products.db", "users.db"]);

	node = startNode(env);
	await waitUntilReady(port);
	const login = await json(port, "POST", "/auth/login", { email: "keeper@x.io", password: "password123" });
	expect(login.status).toBe(200);
	expect(login.body.user.id).toBe(registered.body.user.id);
	const orders = await json(port, "GET", "/orders", undefined, login.body.token);
	expect(orders.body.rows).toEqual([order.body]);
	expect((await json(port, "GET", `/products/${product.id}`)).body.stock).toBe(product.stock - 2);
	expect((await json(port, "GET", "/products")).body.total).toBe(catalogSize); // not seeded twice
});
