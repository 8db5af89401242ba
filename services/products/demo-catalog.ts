/** The demo products seeded into an empty catalog. Prices in cents. */
export const DEMO_CATALOG = [
	{ sku: "MUG-001", name: "Moleculer Mug", description: "A 350 ml ceramic mug with the mole logo.", price: 1299, currency: "USD", category: "kitchen", stock: 120 },
	{ sku: "TEE-001", name: "Cluster T-Shirt", description: "Organic cotton tee: 'It works on my cluster'.", price: 2499, currency: "USD", category: "apparel", stock: 80 },
	{ sku: "HOOD-001", name: "NATS Hoodie", description: "Warm hoodie for cold subjects.", price: 5499, currency: "USD", category: "apparel", stock: 40 },
	{ sku: "STK-001", name: "Sticker Pack", description: "Ten vinyl stickers for your laptop.", price: 499, currency: "USD", category: "accessories", stock: 500 },
	{ sku: "BTL-001", name: "Steel Bottle", description: "Insulated 750 ml bottle that keeps drinks cold for 24 hours.", price: 2999, currency: "USD", category: "kitchen", stock: 60 },
	{ sku: "NOTE-001", name: "Dot Grid Notebook", description: "A5 notebook for service diagrams.", price: 1499, currency: "USD", category: "stationery", stock: 200 },
	{ sku: "PEN-001", name: "Gel Pen Set", description: "Three smooth gel pens: black, blue, red.", price: 899, currency: "USD", category: "stationery", stock: 300 },
	{ sku: "CAP-001", name: "Broker Cap", description: "Adjustable cap with an embroidered broker.", price: 1999, currency: "USD", category: "apparel", stock: 8 },
];
