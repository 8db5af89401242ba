/**
 * Broker options for every moleshop node (moleculer-runner loads this file).
 * Environment values come from lib/config.ts, the one place that reads them.
 */
import type { BrokerOptions } from "moleculer";
import { config } from "./lib/config";

const brokerConfig: BrokerOptions = {
	namespace: "moleshop",
	logger: {
		type: "Console",
		options: { level: config.logLevel, formatter: "short", colors: !config.isProduction, moduleColors: false },
	},
	// Caches reads (product pages, token lookups); moleculer-db cleans it when entities change.
	cacher: "Memory",
	// fastest-validator checks every action's params before its handler runs.
	validator: true,
	requestTimeout: 10_000,
	// Lets a stopping node finish the requests it is serving.
	tracking: { enabled: true, shutdownTimeout: 10_000 },
	metrics: { enabled: false },
	tracing: { enabled: false },
};

export default brokerConfig;
