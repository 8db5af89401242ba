/**
 * The cluster's shape, shared by `npm run cluster` and checked against
 * docker-compose.yml: one process per service (the dead-letter admin
 * `events` beside the gateway), two replicas of the stateless pricing service. Each entry: a label and its SERVICES value.
 */
export const TOPOLOGY: ReadonlyArray<{ label: string; services: string }> = [
	{ label: "users", services: "users" },
	{ label: "products", services: "products" },
	{ label: "carts", services: "carts" },
	{ label: "orders", services: "orders" },
	{ label: "payment-provider", services: "payment-provider" },
	{ label: "payments", services: "payments" },
	{ label: "invoices", services: "invoices" },
	{ label: "notifications", services: "notifications" },
	{ label: "analytics", services: "analytics" },
	{ label: "pricing-1", services: "pricing" },
	{ label: "pricing-2", services: "pricing" },
	{ label: "api", services: "api,events" },
];
