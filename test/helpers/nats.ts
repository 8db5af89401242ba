/** A nats-server of the test's own, with JetStream in its own store, on a free port (never 4222). */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import brokerConfig from "../../moleculer.config";
import { freePort, waitFor } from "./process";

/** Whether the nats-server binary is on PATH. */
export function natsServerInstalled(): boolean {
	return !spawnSync("nats-server", ["--version"]).error;
}

/** `describe` for tests that need a nats-server; without one they are skipped (global-setup prints a notice). */
export function describeWithNats(name: string, tests: () => void) {
	const installed = natsServerInstalled();
	if (!installed && process.env.REQUIRE_NATS) throw new Error("REQUIRE_NATS is set but nats-server is not installed");
	(installed ? describe : describe.skip)(name, tests);
}

export interface NatsServer {
	url: string;
	port: number;
	/** SIGTERM and wait for the exit. */
	stop(): Promise<void>;
	/** Start again on the same port, with the same JetStream store. */
	start(): Promise<void>;
	/** Stop and delete the store. */
	destroy(): Promise<void>;
}

function accepting(port: number): Promise<boolean> {
	return new Promise(resolve => {
		const socket = net.connect(port, "127.0.0.1");
		socket.once("connect", () => socket.end(() => resolve(true)));
		socket.once("error", () => resolve(false));
	});
}

export async function startNatsServer(): Promise<NatsServer> {
	const port = await freePort();
	const store = fs.mkdtempSync(path.join(os.tmpdir(), "moleshop-nats-"));
	let child: ChildProcess | undefined;
	const server: NatsServer = {
		url: `nats://127.0.0.1:${port}`,
		port,
		async start() {
			child = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", store], {
				stdio: "ignore",
			});
			await waitFor(() => accepting(port), 15_000, `nats-server on port ${port}`);
		},
		async stop() {
			if (!child || child.exitCode !== null || child.signalCode !== null) return;
			const exited = new Promise(resolve => child!.once("exit", resolve));
			child.kill("SIGTERM");
			await exited;
		},
		async destroy() {
			await server.stop();
			fs.rmSync(store, { recursive: true, force: true });
		},
	};
	await server.start();
	return server;
}

/**
 * A broker of the test's own on `nats`, in `namespace`, with the real broker options and no services:
 * it sees the cluster as its nodes do (which nodes serve what), and can call into it.
 */
export async function startProbe(nats: NatsServer, namespace: string): Promise<ServiceBroker> {
	const probe = new ServiceBroker({
		...brokerConfig,
		nodeID: `probe-${process.pid}`,
		namespace,
		transporter: { type: "NATS", options: { url: nats.url } },
		logger: false,
	});
	await probe.start();
	return probe;
}
