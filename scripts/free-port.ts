/**
 * Free TCP ports for the servers the tests and the bench start in other processes.
 *
 * Why not `listen(0)`: the kernel hands out those ports from its ephemeral range, the same range it
 * takes the local port of every outgoing connection from. Between the moment a port is found free and
 * the moment a child process listens on it, any connection made on the machine (a node dialling NATS,
 * a readiness poll) can be given that port, and the child then fails with EADDRINUSE. Ports below the
 * ephemeral range are never given to outgoing connections, so a port found free there stays free
 * until someone listens on it; and none is handed out twice by this process.
 */
import fs from "node:fs";
import net from "node:net";

/** Where the kernel's ephemeral range starts (Linux says; 49152 is the IANA start, as macOS uses). */
function ephemeralStart(): number {
	try {
		const [low] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
		const start = Number(low);
		if (Number.isInteger(start) && start > 2048) return start;
	} catch {
		// not Linux
	}
	return 49152;
}

/** Room above each port for the ports a caller counts up from it (`npm run cluster`: one per node). */
const HEADROOM = 200;
const HIGHEST = ephemeralStart() - HEADROOM;
const LOWEST = Math.max(1024, HIGHEST - 12_000);
const handedOut = new Set<number>();

/** Whether nothing listens on `port`, on any interface. */
function canListen(port: number): Promise<boolean> {
	return new Promise(resolve => {
		const server = net.createServer();
		server.unref();
		server.once("error", () => resolve(false));
		server.listen(port, () => server.close(() => resolve(true)));
	});
}

/**
 * A TCP port nothing listens on, below the ephemeral range (so no outgoing connection takes it before
 * the caller's server listens), never the same twice in one process.
 */
export async function freePort(): Promise<number> {
	for (let attempt = 0; attempt < 1000; attempt++) {
		const port = LOWEST + Math.floor(Math.random() * (HIGHEST - LOWEST));
		if (handedOut.has(port)) continue;
		handedOut.add(port);
		if (await canListen(port)) return port;
	}
	throw new Error(`no free port between ${LOWEST} and ${HIGHEST}`);
}
