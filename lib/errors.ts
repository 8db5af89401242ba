/**
 * moleshop's one error style: every client-facing failure is a
 * `MoleculerClientError` with an HTTP status as its code, a stable
 * SCREAMING_CASE type and, where useful, data that says what failed.
 * The gateway turns them into JSON responses as they are.
 */
import { Errors } from "moleculer";

const { MoleculerClientError } = Errors;

export function badRequest(message: string, data?: unknown) {
	return new MoleculerClientError(message, 400, "BAD_REQUEST", data);
}

export function unauthorized(message = "Authentication required") {
	return new MoleculerClientError(message, 401, "UNAUTHORIZED");
}

export function forbidden(message = "You are not allowed to do this") {
	return new MoleculerClientError(message, 403, "FORBIDDEN");
}

export function notFound(entity: string, id?: string) {
	return new MoleculerClientError(`${entity} not found`, 404, "NOT_FOUND", id ? { id } : undefined);
}

export function conflict(message: string, type = "CONFLICT", data?: unknown) {
	return new MoleculerClientError(message, 409, type, data);
}

export function unprocessable(message: string, type: string, data?: unknown) {
	return new MoleculerClientError(message, 422, type, data);
}
