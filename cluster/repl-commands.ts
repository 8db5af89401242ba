/**
 * moleshop's own REPL commands (moleculer-repl `customCommands`). They run in
 * whatever node hosts the REPL and reach the shop through actions, so they
 * work from a REPL node attached to a live cluster.
 */
import type { ServiceBroker } from "moleculer";

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
		command: "health",
		description: "Cluster health: nodes, their services, replicas, actions nobody serves",
		action: clusterHealth,
	},
];
