/**
 * The interactive API docs page (`/api/v1/docs`): swagger-ui from the local swagger-ui-dist
 * package, never a CDN. The page has no inline script (its initializer is a file of its own),
 * so it is served with a strict Content-Security-Policy; swagger-ui still sets inline styles
 * and uses `data:` icons, hence `style-src 'unsafe-inline'` and `img-src data:`.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ServerResponse } from "node:http";

/** The installed swagger-ui-dist package (it ships no typings; its folder is all that is needed). */
const SWAGGER_UI_DIR = dirname(require.resolve("swagger-ui-dist/package.json"));

/** Where the page and its assets live, and the document it shows. */
export const DOCS_PATH = "/api/v1/docs";
export const OPENAPI_PATH = "/api/v1/openapi.json";

const CSP = [
	"default-src 'none'",
	"script-src 'self'",
	"style-src 'self' 'unsafe-inline'",
	"img-src 'self' data:",
	"connect-src 'self'",
	"font-src 'self'",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'",
].join("; ");

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>moleshop API v1</title>
<link rel="stylesheet" href="${DOCS_PATH}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${DOCS_PATH}/swagger-ui-bundle.js"></script>
<script src="${DOCS_PATH}/docs-init.js"></script>
</body>
</html>
`;

/** The page's own initializer: the document of this gateway, the "Try it out" client on the same origin. */
const INIT = `window.ui = SwaggerUIBundle({
	url: ${JSON.stringify(OPENAPI_PATH)},
	dom_id: "#swagger-ui",
	deepLinking: true,
	presets: [SwaggerUIBundle.presets.apis],
	layout: "BaseLayout",
	validatorUrl: null,
	persistAuthorization: false,
});
`;

/** The swagger-ui-dist files the page loads (the only ones served). */
const VENDOR: Record<string, string> = {
	"swagger-ui.css": "text/css; charset=utf-8",
	"swagger-ui-bundle.js": "application/javascript; charset=utf-8",
};

const vendorCache = new Map<string, Buffer>();

function send(res: ServerResponse, type: string, body: string | Buffer, headers: Record<string, string> = {}) {
	res.writeHead(200, {
		"Content-Type": type,
		"X-Content-Type-Options": "nosniff",
		"Cache-Control": "public, max-age=3600",
		...headers,
	});
	res.end(body);
}

/** The HTML page. */
export function sendDocsPage(res: ServerResponse) {
	send(res, "text/html; charset=utf-8", PAGE, { "Content-Security-Policy": CSP, "Cache-Control": "no-cache" });
}

/**
 * One of the page's assets by file name; false when the name is not one of them
 * (the caller answers 404: nothing else of the package, or of the disk, is reachable).
 */
export function sendDocsAsset(res: ServerResponse, file: string): boolean {
	if (file === "docs-init.js") {
		send(res, "application/javascript; charset=utf-8", INIT);
		return true;
	}
	const type = VENDOR[file];
	if (!type) return false;
	let body = vendorCache.get(file);
	if (!body) {
		body = readFileSync(join(SWAGGER_UI_DIR, file));
		vendorCache.set(file, body);
	}
	send(res, type, body);
	return true;
}
