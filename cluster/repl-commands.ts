/**
 * moleshop's own REPL commands (moleculer-repl `customCommands`). They run in
 * whatever node hosts the REPL and reach the shop through actions, so they
 * work from a REPL node attached to a live cluster.
 */
import type { ServiceBroker } from "moleculer";
import type { NodeReportAnswer } from "../platform/node-report";

/** What moleculer-repl passes to an action: declared options, and positionals by name. */
interface ReplArgs {
	options: Record<string, string | undefined>;
	[positional: string]: unknown;
}

/** The answers these commands read (orders.summary, products.*, $node.list, the registry). */
interface ShopSummary {
	orders: number;
	byStatus: Record<string, number>;
	revenue: Record<string, number>;
	averageOrder: Record<string, number>;
}
interface ProductRow {
	id: string;
	sku: string;
	name: string;
	price: number;
	currency: string;
	stock: number;
}
interface NodeRow {
	id: string;
	local: boolean;
	available: boolean;
}
interface ServiceRow {
	name: string;
	nodeID: string;
}
interface ActionRow {
	name: string;
	available: boolean;
}

const money = (cents: number, currency: string) => `${(cents / 100).toFixed(2)} ${currency}`;

async function shopSummary(broker: ServiceBroker, args: ReplArgs) {
	const threshold = args.options.threshold === undefined ? undefined : Number(args.options.threshold);
	const [orders, lowStock] = await Promise.all([
		broker.call<ShopSummary>("orders.summary"),
		broker.call<ProductRow[], object>("products.lowStock", threshold === undefined ? {} : { threshold }),
	]);
	console.log(
		`Orders: ${orders.orders} (${
			Object.entries(orders.byStatus)
				.map(([status, n]) => `${status} ${n}`)
				.join(", ") || "none"
		})`,
	);
	const revenue = Object.entries(orders.revenue).map(([currency, cents]) => money(cents, currency));
	console.log(`Revenue: ${revenue.join(", ") || "0.00"}`);
	console.log(
		`Average order: ${
			Object.entries(orders.averageOrder)
				.map(([c, cents]) => money(cents, c))
				.join(", ") || "-"
		}`,
	);
	if (lowStock.length === 0) console.log("Low stock: none");
	else console.table(lowStock.map(p => ({ sku: p.sku, name: p.name, stock: p.stock })));
}

async function stockLookup(broker: ServiceBroker, args: ReplArgs) {
	const key = String(args.product);
	const product = await broker.call<ProductRow | undefined, object>("products.get", { id: key }).catch(async () => {
		const { rows } = await broker.call<{ rows: ProductRow[] }, object>("products.list", { q: key, pageSize: 100 });
		return rows.find(p => p.sku === key.toUpperCase()) ?? rows[0];
	});
	if (!product) return console.log(`No product matches '${key}'.`);
	console.table([
		{
			id: product.id,
			sku: product.sku,
			name: product.name,
			price: money(product.price, product.currency),
			stock: product.stock,
		},
	]);
}

async function clusterHealth(broker: ServiceBroker) {
	const nodes = await broker.call<NodeRow[], object>("$node.list", { onlyAvailable: false });
	console.table(
		nodes.map(node => ({
			node: node.id + (node.local ? " (this REPL)" : ""),
			available: node.available,
			services: (
				broker.registry.getServiceList({
					onlyAvailable: false,
					skipInternal: true,
					withActions: false,
				}) as ServiceRow[]
			)
				.filter(s => s.nodeID === node.id)
				.map(s => s.name)
				.join(", "),
		})),
	);
	const services = broker.registry.getServiceList({ onlyAvailable: true, skipInternal: true }) as ServiceRow[];
	const replicas = (name: string) => services.filter(s => s.name === name).length;
	console.log(
		`Replicas: ${[...new Set(services.map(s => s.name))]
			.sort()
			.map(name => `${name} ×${replicas(name)}`)
			.join(", ")}`,
	);
	const actions = broker.registry.getActionList({ skipInternal: true }) as ActionRow[];
	const unserved = actions.filter(action => !action.available).map(action => action.name);
	console.log(
		unserved.length
			? `Actions with no available node: ${unserved.join(", ")}`
			: "Every action has an available node.",
	);
}

/** Every available node's own report (platform/node-report.ts), asked of each node by id; a silent node is named. */
async function nodeReports(broker: ServiceBroker): Promise<{ reports: NodeReportAnswer[]; silent: string[] }> {
	const nodes = await broker.call<NodeRow[], object>("$node.list", { onlyAvailable: true });
	const answers = await Promise.allSettled(
		nodes.map(node =>
			broker.call<NodeReportAnswer, object>("$shop.report", {}, { nodeID: node.id, timeout: 3_000 }),
		),
	);
	const reports: NodeReportAnswer[] = [];
	const silent: string[] = [];
	answers.forEach((answer, i) =>
		answer.status === "fulfilled" ? reports.push(answer.value) : silent.push(nodes[i].id),
	);
	return { reports, silent };
}

/** The check results of a report whose name ends with `.outbox`, by service. */
type OutboxCheck = {
	backlog?: number;
	oldestAgeSeconds?: number;
	bound?: number;
	degraded?: boolean;
	atLeast?: boolean;
};

async function outboxAndDeadLetters(broker: ServiceBroker) {
	const { reports, silent } = await nodeReports(broker);
	const rows = reports.flatMap(report =>
		Object.entries(report.readiness.checks)
			.filter(([name]) => name.endsWith(".outbox"))
			.map(([name, check]) => {
				const outbox = check as OutboxCheck;
				return {
					node: report.nodeID,
					service: name.replace(/\.outbox$/, ""),
					backlog: `${outbox.backlog ?? 0}${outbox.atLeast ? "+" : ""}`,
					"oldest (s)": outbox.oldestAgeSeconds ?? 0,
					state: outbox.degraded ? `over ${outbox.bound}` : "ok",
				};
			}),
	);
	if (rows.length) console.table(rows);
	else console.log("No node with an outbox answered.");
	const letters = await broker
		.call<{ durable: boolean; rows: Array<{ channel: string }>; message?: string }, object>("events.deadLetters", {
			limit: 100,
		})
		.catch((err: Error) => ({ durable: false, rows: [], message: `events is not reachable: ${err.message}` }));
	if (!letters.durable) console.log(`Dead letters: ${letters.message ?? "no queue"}`);
	else if (letters.rows.length === 0) console.log("Dead letters: none");
	else {
		const byChannel = new Map<string, number>();
		for (const letter of letters.rows) byChannel.set(letter.channel, (byChannel.get(letter.channel) ?? 0) + 1);
		console.log(`Dead letters (the oldest ${letters.rows.length}; \`call events.deadLetters\` lists them):`);
		console.table([...byChannel].map(([channel, count]) => ({ channel, count })));
	}
	if (silent.length) console.log(`Did not answer: ${silent.join(", ")}`);
}

async function circuitStates(broker: ServiceBroker, args: ReplArgs) {
	const { reports, silent } = await nodeReports(broker);
	const all = !!args.options.all;
	const rows = reports.flatMap(report =>
		report.circuits
			.filter(circuit => all || circuit.state !== "close")
			.map(circuit => ({ caller: report.nodeID, ...circuit })),
	);
	if (rows.length) console.table(rows);
	else console.log(all ? "No node has called another yet." : "Every circuit is closed (--all lists them).");
	if (silent.length) console.log(`Did not answer: ${silent.join(", ")}`);
}

async function recentOrders(broker: ServiceBroker, args: ReplArgs) {
	const status = args.status ? String(args.status) : undefined;
	const limit = Number(args.options.limit ?? 10);
	const orders = await broker.call<
		Array<{ id: string; status: string; total: number; currency: string; userId: string; createdAt: string }>,
		object
	>("orders.recent", { ...(status && { status }), limit });
	if (orders.length === 0) return console.log(status ? `No order is ${status}.` : "No orders yet.");
	console.table(
		orders.map(order => ({
			id: order.id,
			status: order.status,
			total: money(order.total, order.currency),
			customer: order.userId,
			created: new Date(order.createdAt).toISOString(),
		})),
	);
}

/**
 * moleculer-repl's typings say an action gets `args: string[]`; it passes the parsed
 * arguments object (options and positionals), which is what the commands read.
 */
const withArgs =
	(command: (broker: ServiceBroker, args: ReplArgs) => Promise<void>) => (broker: ServiceBroker, args: unknown) =>
		command(broker, args as ReplArgs);

/** Passed to the broker as `replOptions.customCommands`. */
export const replCommands = [
	{
		command: "shop",
		description: "Shop summary: orders, revenue and products low on stock",
		options: [{ option: "-t, --threshold <n>", description: "Low-stock threshold (default: LOW_STOCK_THRESHOLD)" }],
		action: withArgs(shopSummary),
	},
	{
		command: "stock <product>",
		description: "Look up a product and its stock by id or SKU",
		action: withArgs(stockLookup),
	},
	{
		command: "outbox",
		description: "Outbox backlog of every service on every node, and the dead letters by channel",
		action: outboxAndDeadLetters,
	},
	{
		command: "circuits",
		description: "Circuit breakers that are not closed, from every node (each reports its own)",
		options: [{ option: "-a, --all", description: "Every circuit, closed ones too" }],
		action: withArgs(circuitStates),
	},
	{
		command: "orders [status]",
		description: "The newest orders, of one status or any",
		options: [{ option: "-l, --limit <n>", description: "How many (default 10, at most 100)" }],
		action: withArgs(recentOrders),
	},
	{
		command: "health",
		description: "Cluster health: nodes, their services, replicas, actions nobody serves",
		action: clusterHealth,
	},
];
