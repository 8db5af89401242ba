/**
 * moleshop as a real cluster: one OS process per node, talking over a NATS
 * server of the test's own. Skipped with a notice where nats-server is not
 * installed, except where REQUIRE_NATS=1 (CI), which makes it mandatory.
 *
 * Stated bounds (generous, never timed assertions on the happy path):
 * - a replica killed with SIGKILL or stopped with SIGTERM under load: zero failed requests;
 * - with the only pricing node failing, the gateway answers 503 within 1 s per request once
 *   the circuit is open, and serves again within 20 s after the node recovers;
 * - after NATS restarts, the cluster serves again within 30 s.
 */
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import fs from "node:fs";
import type { ServiceBroker } from "moleculer";
import { TOPOLOGY } from "../../cluster/topology";
import { steadyLoad } from "../helpers/load";
import { describeWithNats, startNatsServer, startProbe, type NatsServer } from "../helpers/nats";
import { freePort, startNode, startRepl, waitFor, waitUntilReady, type NodeProcess } from "../helpers/process";

const FIXTURES = path.resolve(__dirname, "../fixtures/services");

describeWithNats("npm run cluster", () => {
	it("starts the topology, serves, and stops every child on SIGTERM", async () => {
		const nats = await startNatsServer();
		const port = await freePort();
		const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "moleshop-script-"));
		const script = spawn(process.execPath, [path.resolve(__dirname, "../../dist/scripts/cluster.js")], {
			env: {
				PATH: process.env.PATH ?? "",
				HOME: os.tmpdir(),
				TRANSPORTER: nats.url,
				PORT: String(port),
				METRICS_PORT: String(await freePort()),
				DATA_DIR: dataDir,
				NAMESPACE: `script-${process.pid}`,
				LOG_LEVEL: "warn",
				...(process.env.MONGO_URI && { MONGO_URI: process.env.MONGO_URI }), // the MongoDB path: every node of the script on the file's database
			},
			stdio: ["ignore", "pipe", "pipe"],
		});
		let output = "";
		script.stdout.on("data", chunk => (output += chunk));
		script.stderr.on("data", chunk => (output += chunk));
		const exited = new Promise(resolve => script.once("exit", resolve));
		try {
			await waitUntilReady(port, 90_000);
			const pids = [...output.matchAll(/started (\S+) \(pid (\d+)\)/g)].map(m => ({
				label: m[1],
				pid: Number(m[2]),
			}));
			expect(pids.map(p => p.label).sort()).toEqual(TOPOLOGY.map(t => t.label).sort());
			expect(output).toMatch(/^users\s+\| .*JWT_SECRET is not set/m); // node logs, prefixed by node
			// Every node's own /ready is printed, and waited on; one of them answers with its checks.
			await waitFor(
				async () => output.includes("cluster | every node is ready"),
				90_000,
				"every node to be ready",
			);
			const [, usersReady, usersMetrics] = output.match(/cluster \| users health: \S+ · (\S+) · metrics: (\S+)/)!;
			// Each node's metrics, on a port of its own, where the script said.
			const metrics = await (await fetch(usersMetrics)).text();
			expect(metrics).toMatch(/^# TYPE moleculer_/m);
			expect(metrics).toMatch(/^process_memory_rss\{.*nodeID="[^"]+"/m);
			const answer = await fetch(usersReady);
			expect(answer.status).toBe(200);
			expect(await answer.json()).toMatchObject({
				status: "ready",
				checks: { transporter: { ok: true }, jetstream: { ok: true }, "users.store": { ok: true } },
			});
			script.kill("SIGTERM");
			expect(await exited).toBe(0);
			const alive = pids.filter(({ pid }) => {
				try {
					process.kill(pid, 0);
					return true;
				} catch {
					return false;
				}
			});
			expect(alive).toEqual([]);
		} catch (err) {
			// What the script and its nodes printed is the only account of a start that went wrong.
			(err as Error).message +=
				`\n--- npm run cluster printed (last 6000 characters) ---\n${output.slice(-6000)}`;
			throw err;
		} finally {
			if (script.exitCode === null) script.kill("SIGKILL");
			await nats.destroy();
			fs.rmSync(dataDir, { recursive: true, force: true });
		}
	}, 120_000);
});

describeWithNats("cluster over NATS", () => {
	let nats: NatsServer;
	let probe: ServiceBroker;
	let apiPort: number;
	let dataDir: string;
	const nodes = new Map<string, NodeProcess>();
	const namespace = `cluster-${process.pid}`;

	const nodeID = (node: NodeProcess) => `${os.hostname().toLowerCase()}-${node.child.pid}`;
	const env = () => ({ TRANSPORTER: nats.url, NAMESPACE: namespace, DATA_DIR: dataDir, JWT_SECRET: "cluster-test" });
	function start(label: string, services: string, extra: Record<string, string> = {}) {
		const node = startNode({ ...env(), SERVICES: services, ...extra });
		nodes.set(label, node);
		return node;
	}
	/** Node ids serving `service`, as the probe sees them. */
	const servedBy = (service: string) =>
		(probe.registry.getServiceList({ onlyAvailable: true }) as any[])
			.filter(s => s.name === service)
			.map(s => s.nodeID as string)
			.sort();
	const quote = (signal?: AbortSignal) =>
		fetch(`http://127.0.0.1:${apiPort}/api/v1/quote`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: '{"items":[],"country":"DE"}',
			signal,
		});
	const quoteLoad = () => steadyLoad(async signal => (await quote(signal)).status);
	/** Which nodes answer `count` direct calls to pricing.quote from the probe. */
	async function answeringNodes(count: number) {
		const answered: string[] = [];
		for (let i = 0; i < count; i++) {
			const call = probe.call("pricing.quote", { items: [] });
			await call;
			answered.push((call as any).ctx.nodeID);
		}
		return answered;
	}

	beforeAll(async () => {
		dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "moleshop-cluster-"));
		nats = await startNatsServer();
		apiPort = await freePort();
		for (const { label, services } of TOPOLOGY.filter(t => t.label !== "api")) start(label, services);
		start("api", "api,events", { PORT: String(apiPort), LOG_LEVEL: "info" }); // info: the circuit log lines
		probe = await startProbe(nats, namespace);
		await waitUntilReady(apiPort, 90_000);
		await waitFor(async () => servedBy("pricing").length === 2, 30_000, "two pricing replicas");
	}, 120_000);

	afterAll(async () => {
		await probe?.stop();
		await Promise.all([...nodes.values()].map(node => node.stop()));
		await nats?.destroy();
		fs.rmSync(dataDir, { recursive: true, force: true });
	}, 60_000);

	it("routes a purchase from the gateway to services in other processes", async () => {
		const api = `http://127.0.0.1:${apiPort}/api/v1`;
		const post = (url: string, body: object, token?: string) =>
			fetch(api + url, {
				method: "POST",
				body: JSON.stringify(body),
				headers: { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) },
			});
		const registered = await post("/auth/register", {
			name: "Remote",
			email: "remote@x.io",
			password: "password123",
		});
		expect(registered.status).toBe(201);
		const { token } = (await registered.json()) as any;
		const product = ((await (await fetch(`${api}/products?q=mug`)).json()) as any).rows[0];
		const order = await post(
			"/orders",
			{ items: [{ productId: product.id, quantity: 2 }], paymentMethod: "pm_card_visa" },
			token,
		);
		expect(order.status).toBe(201);
		expect(await order.json()).toMatchObject({ status: "paid", subtotal: 2 * product.price });
	});

	it("balances calls over the two pricing replicas", async () => {
		const answered = await answeringNodes(20);
		const replicas = servedBy("pricing");
		expect(new Set(answered)).toEqual(new Set(replicas));
		for (const replica of replicas) expect(answered.filter(id => id === replica).length).toBeGreaterThanOrEqual(5);
	});

	it("loses no request when a replica is killed with SIGKILL under load, direct or nested", async () => {
		// A signed-in customer with a cart: GET /cart reaches pricing through the carts service.
		const api = `http://127.0.0.1:${apiPort}/api/v1`;
		const json = { "content-type": "application/json" };
		const { token } = (await (
			await fetch(`${api}/auth/register`, {
				method: "POST",
				headers: json,
				body: JSON.stringify({ name: "Loader", email: "loader@x.io", password: "password123" }),
			})
		).json()) as any;
		const product = ((await (await fetch(`${api}/products?q=pen`)).json()) as any).rows[0];
		const auth = { authorization: `Bearer ${token}` };
		expect(
			(
				await fetch(`${api}/cart/items/${product.id}`, {
					method: "PUT",
					headers: { ...json, ...auth },
					body: '{"quantity":1}',
				})
			).status,
		).toBe(200);

		const load = quoteLoad();
		const cartLoad = steadyLoad(async signal => (await fetch(`${api}/cart`, { headers: auth, signal })).status, 2);
		await waitFor(async () => load.result.ok >= 20 && cartLoad.result.ok >= 10, 30_000, "the load to run");
		nodes.get("pricing-1")!.child.kill("SIGKILL");
		await waitFor(async () => servedBy("pricing").length === 1, 30_000, "the cluster to drop the killed replica");
		const ok = load.result.ok;
		await waitFor(async () => load.result.ok >= ok + 20, 30_000, "the load to go on");
		const [direct, nested] = [await load.stop(), await cartLoad.stop()];
		expect(direct.failures).toEqual([]);
		expect(nested.failures).toEqual([]);
	}, 90_000);

	it("sends calls to a broker started under load", async () => {
		const load = quoteLoad();
		const before = servedBy("pricing");
		const fresh = start("pricing-3", "pricing");
		await waitFor(async () => servedBy("pricing").includes(nodeID(fresh)), 30_000, "the new replica to join");
		expect(servedBy("pricing")).toEqual([...before, nodeID(fresh)].sort());
		expect(await answeringNodes(10)).toContain(nodeID(fresh));
		const result = await load.stop();
		expect(result.failures).toEqual([]);
	}, 60_000);

	it("loses no request when a replica stops gracefully with SIGTERM under load", async () => {
		const load = quoteLoad();
		await waitFor(async () => load.result.ok >= 20, 30_000, "the load to run");
		expect(await nodes.get("pricing-2")!.stop()).toBe(0);
		const ok = load.result.ok;
		await waitFor(async () => load.result.ok >= ok + 20, 30_000, "the load to go on");
		const result = await load.stop();
		expect(result.failures).toEqual([]);
		expect(servedBy("pricing")).toEqual([nodeID(nodes.get("pricing-3")!)]);
	}, 90_000);

	it("opens the circuit to a failing dependency, answers 503 fast, then recovers", async () => {
		const broken = start("broken-pricing", "pricing", { SERVICEDIR: FIXTURES });
		await waitFor(async () => servedBy("pricing").includes(nodeID(broken)), 30_000, "the failing replica to join");
		await nodes.get("pricing-3")!.stop();
		await waitFor(
			async () => servedBy("pricing").length === 1,
			30_000,
			"only the failing replica to serve pricing",
		);

		const statuses: number[] = [];
		const trace: string[] = [];
		/** The Retry-After header of each fast 503, checked once the circuit is open (not inside the wait). */
		const fastUnavailable: Array<string | null> = [];
		await waitFor(
			async () => {
				const sent = Date.now();
				const res = await quote();
				statuses.push(res.status);
				trace.push(`${res.status}/${Date.now() - sent}ms/${((await res.clone().json()) as any).type}`);
				if (res.status === 503 && Date.now() - sent < 1_000)
					fastUnavailable.push(res.headers.get("retry-after"));
				return fastUnavailable.length >= 5;
			},
			30_000,
			"the circuit to open",
		).catch(err => {
			throw new Error(`${err.message}; statuses: ${trace.join(" ")}\n${nodes.get("api")!.output().slice(-4000)}`);
		});
		expect(statuses[0]).toBe(500);
		expect(statuses.filter(s => s !== 500 && s !== 503)).toEqual([]);
		expect(fastUnavailable.filter(retryAfter => !retryAfter)).toEqual([]); // every fast 503 says when to retry

		await probe.call("pricing.setFailing", { failing: false });
		const after: number[] = [];
		await waitFor(
			async () => after[after.push((await quote()).status) - 1] === 200,
			20_000,
			"the gateway to serve again",
		).catch(err => {
			throw new Error(`${err.message}; statuses: ${after.join(" ")}\n${nodes.get("api")!.output().slice(-3000)}`);
		});
		await waitFor(
			async () => /Circuit CLOSED for 'pricing\.quote'/.test(nodes.get("api")!.output()),
			10_000,
			"the closed circuit to be logged",
		);
		expect(nodes.get("api")!.output()).toMatch(/Circuit OPEN for 'pricing\.quote'/);
	}, 90_000);

	it("serves again within 30 s after NATS restarts during load", async () => {
		const products = (signal: AbortSignal) =>
			fetch(`http://127.0.0.1:${apiPort}/api/v1/products?pageSize=1`, { signal }).then(r => r.status);
		const load = steadyLoad(products);
		await waitFor(async () => load.result.ok >= 10, 30_000, "the load to run");
		await nats.stop();
		// Longer than heartbeatTimeout (6 s): nodes drop each other and must rediscover.
		await new Promise(resolve => setTimeout(resolve, 10_000));
		await nats.start();
		const okAtRestart = load.result.ok;
		await waitFor(async () => load.result.ok >= okAtRestart + 20, 30_000, "the cluster to serve again");
		await load.stop(); // the 30 s bound is the waitFor above
	}, 90_000);

	it("attaches a REPL that answers `nodes`, a `call` and the shop's own commands", async () => {
		const home = fs.mkdtempSync(path.join(os.tmpdir(), "moleshop-repl-"));
		const repl = await startRepl(env(), home);
		let exitCode: number | null | undefined;
		try {
			await waitFor(
				async () => (await repl.command("nodes")).includes(nodeID(nodes.get("api")!)),
				30_000,
				"the REPL to see the gateway node",
			);
			const answer = await repl.command("call products.get --id doesNotExist1234");
			expect(answer).toMatch(/Product not found/);
			expect(await repl.command(`call products.list '{"q":"hoodie"}'`)).toMatch(/HOOD-001[\s\S]*total: 1/);
			expect(await repl.command("stock MUG-001")).toMatch(/MUG-001.*Moleculer Mug.*12\.99 USD/);
			// The purchase of the first test: one order of two mugs.
			expect(await repl.command("shop --threshold 10")).toMatch(
				/Orders: 1 \(paid 1\)[\s\S]*Revenue: \d+\.\d\d USD[\s\S]*CAP-001/,
			);
			// Each node reports its own outbox and circuits; the orders of the first test by status.
			const outbox = await repl.command("outbox");
			for (const service of ["orders", "products", "users"])
				expect(outbox).toMatch(new RegExp(`│ +'${service}' +│`));
			expect(outbox).toMatch(/Dead letters/);
			expect(outbox).not.toMatch(/Did not answer/);
			expect(await repl.command("circuits")).toMatch(/Every circuit is closed|caller/);
			expect(await repl.command("orders paid")).toMatch(/paid[\s\S]*USD/);
			expect(await repl.command("orders cancelled")).toMatch(/No order is cancelled\.|cancelled/);
			const health = await repl.command("health");
			expect(health).toContain(nodeID(nodes.get("api")!));
			expect(health).toMatch(/Replicas: .*pricing ×1.*users ×1/);
		} finally {
			exitCode = await repl.quit();
			fs.rmSync(home, { recursive: true, force: true });
		}
		// After the finally, so that a failure above is reported as itself, not as the REPL's exit.
		expect(exitCode).toBe(0);
	}, 90_000);
});
