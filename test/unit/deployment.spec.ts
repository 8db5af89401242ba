/**
 * docker-compose.yml, the Dockerfile and package.json against the code: every container runs
 * real services, every variable they set is one the code reads, every node starts with the
 * process settings of platform/node-process.ts, and the compose topology is the one `npm run cluster` starts. (`docker-compose config`
 * itself runs in .ci/run, since no container engine runs on these machines.)
 */
import fs from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { TOPOLOGY } from "../../cluster/topology";
import { NODE_FLAGS } from "../../platform/node-process";

const ROOT = path.resolve(__dirname, "../..");
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");
const compose = parse(read("docker-compose.yml"), { merge: true });
/** What SERVICES can name: a folder of services/ with a service file in it (moleculer-runner loads every one below it). */
const serviceFiles = fs
	.readdirSync(path.join(ROOT, "services"), { withFileTypes: true })
	.filter(
		entry =>
			entry.isDirectory() &&
			fs.readdirSync(path.join(ROOT, "services", entry.name)).some(f => f.endsWith(".service.ts")),
	)
	.map(entry => entry.name);
const nodes = Object.entries<any>(compose.services).filter(([, def]) => def.image?.startsWith("moleshop"));

/**
 * Variables the code reads: platform/config.ts (the one reader), plus SERVICES and SERVICEDIR, read by
 * moleculer-runner.
 */
const readByCode = new Set(
	[...read("platform/config.ts").matchAll(/env\.([A-Z_]+)/g)].map(m => m[1]).concat("SERVICES", "SERVICEDIR"),
);

it("runs every service in some container, and only services that exist", () => {
	const run = nodes.flatMap(([, def]) => String(def.environment.SERVICES).split(","));
	expect(new Set(run)).toEqual(new Set(serviceFiles));
});

it("sets only environment variables the code reads", () => {
	for (const [name, def] of nodes) {
		for (const key of Object.keys(def.environment))
			expect([name, key, readByCode.has(key)]).toEqual([name, key, true]);
	}
	for (const [, key] of read("Dockerfile").matchAll(/^\s*(?:ENV\s+)?([A-Z_]+)=/gm))
		expect([key, readByCode.has(key)]).toEqual([key, true]);
});

it("has a healthcheck on every container and waits for healthy dependencies", () => {
	for (const [name, def] of Object.entries<any>(compose.services)) {
		expect([name, Array.isArray(def.healthcheck?.test)]).toEqual([name, true]);
		for (const dependency of Object.values<any>(def.depends_on ?? {}))
			expect(dependency.condition).toBe("service_healthy");
	}
});

it("checks every moleshop container's readiness on the port that node answers it on", () => {
	for (const [name, def] of nodes) {
		// The gateway answers /ready on PORT; every other node on its HEALTH_PORT (platform/middlewares/health-endpoint.ts).
		const port = def.environment.HEALTH_PORT || def.environment.PORT;
		expect([name, def.healthcheck.test.join(" ")]).toEqual([
			name,
			expect.stringContaining(`http://127.0.0.1:${port}/ready`),
		]);
	}
	// The image's own HEALTHCHECK asks /health (alive) on the same choice of port.
	expect(read("Dockerfile")).toMatch(/HEALTH_PORT\|\|process\.env\.PORT.*\/health/);
});

it("has the topology of `npm run cluster`, replicas included", () => {
	const count = (list: string[]) =>
		list.reduce<Record<string, number>>((acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }), {});
	const composed = nodes.flatMap(([, def]) => Array<string>(def.scale ?? 1).fill(def.environment.SERVICES));
	expect(count(composed)).toEqual(count(TOPOLOGY.map(t => t.services)));
});

it("copies into the image every source the build compiles", () => {
	const build = JSON.parse(read("tsconfig.build.json")) as { include: string[] };
	// "platform/**/*.ts" → "platform"; "moleculer.config.ts" stays as it is.
	const compiled = new Set(build.include.map(pattern => pattern.split("/")[0]));
	const copied = new Set(
		[...read("Dockerfile").matchAll(/^COPY (?!--from)(.+)$/gm)].flatMap(([, args]) =>
			args.trim().split(/\s+/).slice(0, -1),
		),
	);
	expect([...compiled].filter(source => !copied.has(source))).toEqual([]);
});

describe("the process of a node", () => {
	const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;
	const dockerCommand = (JSON.parse(/^CMD (\[.*\])$/m.exec(read("Dockerfile"))![1]) as string[]).join(" ");

	it("has the flags of platform/node-process.ts wherever a node is started from text", () => {
		for (const [name, command] of [
			["npm run broker", scripts.broker],
			["npm run repl", scripts.repl],
			["the image", dockerCommand],
		]) {
			const flags = /\bnode ((?:--\S+ )*)\S*moleculer-runner/.exec(command)?.[1].trim().split(" ");
			expect([name, flags]).toEqual([name, [...NODE_FLAGS]]);
		}
	});
});
