/**
 * A MongoDB stand-in for the tests of the MongoDB path, on machines where no
 * MongoDB server can be installed.
 *
 * It speaks MongoDB's wire protocol (OP_MSG, and OP_QUERY for the driver's first
 * handshake), so the real driver, mongoose, moleculer-db-adapter-mongoose and every
 * moleshop service connect to it with a `mongodb://` URI and run exactly as they
 * would against mongod: models, schema casting and strict mode, hydrated
 * documents and ObjectIds, index creation, duplicate-key errors (code 11000, as
 * the driver's MongoServerError), counts of matched and modified documents.
 * The commands are executed in memory by NeDB's query and update engine
 * (@seald-io/nedb), one command at a time, with NeDB's unique and sparse indexes.
 *
 * What it proves: the translation between moleshop and MongoDB (what the
 * services send, what mongoose makes of it, what comes back). What it does not:
 * MongoDB's own engine. In particular it runs one command at a time (two writes
 * never meet inside the store, so store-level races such as two first upserts of
 * one counter do not happen here), it lists the indexes it was asked to create
 * (so index flags are checked against what mongoose asked for, not against a
 * server's own bookkeeping), and it sorts values of different BSON types in
 * NeDB's order, not MongoDB's. The suite runs against a real MongoDB whenever
 * MONGO_URI is set.
 *
 * Anything it does not implement is refused with an error naming it, never
 * answered with a guess. Run on its own: `npx tsx test/helpers/mongo-standin.ts [port]`.
 */
import net from "node:net";
import { isDeepStrictEqual } from "node:util";
import Datastore from "@seald-io/nedb";
import { mongo } from "mongoose";

const { BSON, ObjectId } = mongo;
type Doc = Record<string, any>;

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;
const MORE_TO_COME = 1 << 1;
const CHECKSUM_PRESENT = 1 << 0;
const MAX_WIRE_VERSION = 21; // MongoDB 7.0

/** ObjectIds are stored in NeDB as tagged strings: equal ids stay equal, and they sort as ObjectIds do. */
const OID_TAG = "\u0000oid:";

/** A command failure, answered as `{ ok: 0, errmsg, code, codeName }`. */
class CommandError extends Error {
	constructor(
		message: string,
		readonly code: number,
		readonly codeName: string,
		readonly extra: Doc = {},
	) {
		super(message);
	}
}

const unsupported = (what: string) =>
	new CommandError(`The MongoDB stand-in does not implement ${what}`, 115, "CommandNotSupported");

/** A BSON value as NeDB stores it. */
function toStore(value: any): any {
	if (value instanceof ObjectId) return OID_TAG + value.toHexString();
	if (value === null || typeof value !== "object" || value instanceof Date || value instanceof RegExp) return value;
	if (Array.isArray(value)) return value.map(toStore);
	if (value._bsontype) throw unsupported(`BSON values of type ${value._bsontype}`);
	const out: Doc = {};
	for (const [key, v] of Object.entries(value)) if (v !== undefined) out[key] = toStore(v);
	return out;
}

/** A value NeDB stored, as BSON values again. */
function fromStore(value: any): any {
	if (typeof value === "string" && value.startsWith(OID_TAG)) return new ObjectId(value.slice(OID_TAG.length));
	if (value === null || typeof value !== "object" || value instanceof Date) return value;
	if (Array.isArray(value)) return value.map(fromStore);
	const out: Doc = {};
	for (const [key, v] of Object.entries(value)) out[key] = fromStore(v);
	return out;
}

/** A query as NeDB reads it: `{ $regex: "text", $options: "i" }` becomes a RegExp. */
function toQuery(filter: Doc = {}): Doc {
	const walk = (value: any): any => {
		if (value === null || typeof value !== "object" || value instanceof Date || value instanceof RegExp)
			return value;
		if (Array.isArray(value)) return value.map(walk);
		if (typeof value.$regex === "string") {
			const { $regex, $options, ...rest } = value;
			return { ...walk(rest), $regex: new RegExp($regex, $options ?? "") };
		}
		if (value.$regex instanceof RegExp && value.$options) {
			const { $regex, $options, ...rest } = value;
			return { ...walk(rest), $regex: new RegExp($regex.source, $options) };
		}
		for (const op of ["$type", "$expr", "$where", "$text", "$jsonSchema", "$all", "$mod"])
			if (op in value) throw unsupported(`the query operator ${op}`);
		return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
	};
	return walk(toStore(filter));
}

interface IndexSpec {
	v: number;
	key: Record<string, number>;
	name: string;
	unique?: boolean;
	sparse?: boolean;
}

class Collection {
	readonly store = new Datastore({ inMemoryOnly: true });
	readonly indexes: IndexSpec[] = [{ v: 2, key: { _id: 1 }, name: "_id_" }];

	constructor(readonly ns: string) {}

	async createIndex(spec: IndexSpec) {
		const fields = Object.keys(spec.key);
		if (fields.length !== 1 || ![1, -1].includes(spec.key[fields[0]]))
			throw unsupported(
				`the index ${JSON.stringify(spec.key)} (only single-field ascending or descending indexes)`,
			);
		const existing = this.indexes.find(index => index.name === spec.name);
		if (existing) {
			if (!!existing.unique !== !!spec.unique || !!existing.sparse !== !!spec.sparse) {
				throw new CommandError(
					`An existing index has the same name as the requested index: ${spec.name}`,
					86,
					"IndexKeySpecsConflict",
				);
			}
			return;
		}
		if (fields[0] !== "_id") {
			try {
				await this.store.ensureIndexAsync({
					fieldName: fields[0],
					unique: !!spec.unique,
					sparse: !!spec.sparse,
				});
			} catch (err) {
				throw this.writeError(err);
			}
		}
		this.indexes.push({
			v: 2,
			key: spec.key,
			name: spec.name,
			...(spec.unique && { unique: true }),
			...(spec.sparse && { sparse: true }),
		});
	}

	/** NeDB's unique violation as MongoDB's E11000, naming the index. */
	writeError(err: any): CommandError {
		if (err?.errorType !== "uniqueViolated") return new CommandError(String(err?.message ?? err), 2, "BadValue");
		const storeIndexes = (
			this.store as unknown as { indexes: Record<string, { getMatching(key: unknown): unknown[] }> }
		).indexes;
		const index =
			this.indexes.find(i => i.unique && storeIndexes[Object.keys(i.key)[0]]?.getMatching(err.key).length) ??
			this.indexes[0];
		const field = Object.keys(index.key)[0];
		const keyValue = { [field]: fromStore(err.key) };
		return new CommandError(
			`E11000 duplicate key error collection: ${this.ns} index: ${index.name} dup key: ${JSON.stringify(keyValue)}`,
			11000,
			"DuplicateKey",
			{
				keyPattern: index.key,
				keyValue,
			},
		);
	}

	async find(
		filter: Doc,
		opts: { sort?: Doc; skip?: number; limit?: number; projection?: Doc } = {},
	): Promise<Doc[]> {
		let cursor = this.store.findAsync(toQuery(filter), projectionOf(opts.projection));
		if (opts.sort && Object.keys(opts.sort).length) {
			for (const [field, direction] of Object.entries(opts.sort)) {
				if (direction !== 1 && direction !== -1) throw unsupported(`the sort ${JSON.stringify(opts.sort)}`);
				if (field.startsWith("$")) throw unsupported(`sorting by ${field}`);
			}
			cursor = cursor.sort(opts.sort);
		}
		if (opts.skip) cursor = cursor.skip(opts.skip);
		if (opts.limit) cursor = cursor.limit(Math.abs(opts.limit));
		return (await cursor).map(fromStore);
	}

	async insert(doc: Doc) {
		try {
			await this.store.insertAsync(toStore(doc._id === undefined ? { _id: new ObjectId(), ...doc } : doc));
		} catch (err) {
			throw this.writeError(err);
		}
	}

	/**
	 * One update statement: `{ n, nModified, upserted? }` like MongoDB. An upsert
	 * that matches nothing inserts the query's equality fields with the update applied.
	 */
	async update(
		q: Doc,
		u: Doc | Doc[],
		{ multi = false, upsert = false } = {},
	): Promise<{ n: number; nModified: number; upserted?: unknown; doc?: Doc }> {
		if (Array.isArray(u)) throw unsupported("pipeline updates");
		refuseConflicts(u);
		const { $setOnInsert, ...update } = u;
		for (const op of Object.keys(update)) {
			if (
				op.startsWith("$") &&
				!["$set", "$unset", "$inc", "$push", "$pull", "$addToSet", "$pop", "$min", "$max"].includes(op)
			)
				throw unsupported(`the update operator ${op}`);
		}
		const query = toQuery(q);
		const matched = await this.store.findAsync(query);
		const targets = multi ? matched : matched.slice(0, 1);
		if (targets.length === 0) {
			if (!upsert) return { n: 0, nModified: 0 };
			const base = Object.fromEntries(
				Object.entries(q).filter(([k, v]) => !k.startsWith("$") && !isOperatorObject(v)),
			);
			const replacement = !Object.keys(update).some(k => k.startsWith("$"));
			let doc = replacement
				? { ...update, ...(base._id !== undefined && { _id: base._id }) }
				: applyUpdate(
						{ ...base },
						{ ...update, ...($setOnInsert && { $set: { ...update.$set, ...$setOnInsert } }) },
					);
			if (doc._id === undefined) doc = { _id: new ObjectId(), ...doc };
			await this.insert(doc);
			return { n: 1, nModified: 0, upserted: doc._id, doc };
		}
		let nModified = 0;
		let last: Doc | undefined;
		for (const before of targets) {
			let result;
			try {
				result = await this.store.updateAsync(
					{ _id: before._id },
					Object.keys(update).length ? toStore(update) : { $set: {} },
					{ returnUpdatedDocs: true },
				);
			} catch (err) {
				throw this.writeError(err);
			}
			const after = result.affectedDocuments as Doc;
			if (!isDeepStrictEqual(before, after)) nModified++;
			last = fromStore(after);
		}
		return { n: targets.length, nModified, doc: last };
	}

	async remove(q: Doc, limit: number): Promise<{ n: number; doc?: Doc }> {
		const targets = (await this.store.findAsync(toQuery(q))).slice(0, limit === 1 ? 1 : undefined);
		for (const doc of targets) await this.store.removeAsync({ _id: doc._id }, {});
		return { n: targets.length, doc: targets[0] && fromStore(targets[0]) };
	}
}

/** MongoDB refuses an update that names one path twice, or a path and a part of it (`m` and `m.x`), across all its operators. */
function refuseConflicts(update: Doc) {
	const paths = Object.entries(update)
		.filter(([op]) => op.startsWith("$"))
		.flatMap(([, fields]) => Object.keys(fields ?? {}));
	for (const [i, a] of paths.entries()) {
		const other = paths.find((b, j) => j !== i && (a === b || b.startsWith(`${a}.`)));
		if (other)
			throw new CommandError(
				`Updating the path '${other}' would create a conflict at '${a}'`,
				40,
				"ConflictingUpdateOperators",
			);
	}
}

function isOperatorObject(value: unknown): boolean {
	return (
		!!value &&
		typeof value === "object" &&
		!(value instanceof Date) &&
		!(value instanceof ObjectId) &&
		Object.keys(value).some(k => k.startsWith("$"))
	);
}

/** NeDB's own modifier engine, applied to a plain document (for upserts). */
function applyUpdate(doc: Doc, update: Doc): Doc {
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const model = require("@seald-io/nedb/lib/model.js");
	return fromStore(model.modify(toStore(doc), toStore(update)));
}

function projectionOf(projection?: Doc): Doc {
	if (!projection || Object.keys(projection).length === 0) return {};
	for (const [field, value] of Object.entries(projection)) {
		if (typeof value === "object" || field.startsWith("$"))
			throw unsupported(`the projection ${JSON.stringify(projection)}`);
	}
	return Object.fromEntries(Object.entries(projection).map(([field, value]) => [field, value ? 1 : 0]));
}

const cursorReply = (ns: string, docs: Doc[], batch = "firstBatch") => ({
	cursor: { [batch]: docs, id: BSON.Long.ZERO, ns },
	ok: 1,
});

export interface MongoStandIn {
	/** `mongodb://127.0.0.1:<port>` (add a database name). */
	uri: string;
	port: number;
	/** Every command received so far, by name (for tests that check what reached the store). */
	commands: Map<string, number>;
	close(): Promise<void>;
}

/** Start the stand-in on `port` (0: a free one) on 127.0.0.1. */
export async function startMongoStandIn(port = 0): Promise<MongoStandIn> {
	const databases = new Map<string, Map<string, Collection>>();
	const commands = new Map<string, number>();
	const sockets = new Set<net.Socket>();
	let queue: Promise<unknown> = Promise.resolve();
	let connections = 0;

	const database = (name: string) => {
		if (!databases.has(name)) databases.set(name, new Map());
		return databases.get(name)!;
	};
	const collection = (db: string, name: string, create = true): Collection | undefined => {
		const collections = database(db);
		if (!collections.has(name) && create) collections.set(name, new Collection(`${db}.${name}`));
		return collections.get(name);
	};

	async function run(cmd: Doc, connectionId: number): Promise<Doc> {
		const name = Object.keys(cmd)[0];
		const db = cmd.$db ?? "admin";
		commands.set(name, (commands.get(name) ?? 0) + 1);
		switch (name.toLowerCase()) {
			case "hello":
			case "ismaster":
				return {
					helloOk: true,
					ismaster: true,
					isWritablePrimary: true,
					maxBsonObjectSize: 16 * 1024 * 1024,
					maxMessageSizeBytes: 48_000_000,
					maxWriteBatchSize: 100_000,
					localTime: new Date(),
					logicalSessionTimeoutMinutes: 30,
					connectionId,
					minWireVersion: 0,
					maxWireVersion: MAX_WIRE_VERSION,
					readOnly: false,
					ok: 1,
				};
			case "ping":
			case "endsessions":
				return { ok: 1 };
			case "buildinfo":
				return { version: "7.0.0-moleshop-standin", versionArray: [7, 0, 0, 0], ok: 1 };
			case "killcursors":
				return {
					cursorsKilled: [],
					cursorsNotFound: cmd.cursors ?? [],
					cursorsAlive: [],
					cursorsUnknown: [],
					ok: 1,
				};
			case "getmore":
				return cursorReply(`${db}.${cmd.collection}`, [], "nextBatch");
			case "create": {
				if (database(db).has(cmd.create))
					throw new CommandError(`Collection ${db}.${cmd.create} already exists.`, 48, "NamespaceExists");
				collection(db, cmd.create);
				return { ok: 1 };
			}
			case "listcollections": {
				const names = [...database(db).keys()].filter(
					n => cmd.filter?.name === undefined || cmd.filter.name === n,
				);
				return cursorReply(
					`${db}.$cmd.listCollections`,
					names.map(n => ({ name: n, type: "collection", options: {}, info: { readOnly: false } })),
				);
			}
			case "drop": {
				if (!database(db).delete(cmd.drop)) throw new CommandError("ns not found", 26, "NamespaceNotFound");
				return { ns: `${db}.${cmd.drop}`, ok: 1 };
			}
			case "listdatabases":
				return {
					databases: [...databases.keys()].map(n => ({
						name: n,
						sizeOnDisk: 0,
						empty: database(n).size === 0,
					})),
					totalSize: 0,
					ok: 1,
				};
			case "dropdatabase":
				databases.delete(db);
				return { dropped: db, ok: 1 };
			case "createindexes": {
				const coll = collection(db, cmd.createIndexes)!;
				for (const spec of cmd.indexes as IndexSpec[]) await coll.createIndex(spec);
				return { numIndexesAfter: coll.indexes.length, ok: 1 };
			}
			case "listindexes": {
				const coll = collection(db, cmd.listIndexes, false);
				if (!coll)
					throw new CommandError(`ns does not exist: ${db}.${cmd.listIndexes}`, 26, "NamespaceNotFound");
				return cursorReply(coll.ns, coll.indexes);
			}
			case "find": {
				const coll = collection(db, cmd.find, false);
				const docs = coll ? await coll.find(cmd.filter, cmd) : [];
				return cursorReply(`${db}.${cmd.find}`, docs);
			}
			case "count": {
				const coll = collection(db, cmd.count, false);
				return {
					n: coll ? (await coll.find(cmd.query, { skip: cmd.skip, limit: cmd.limit })).length : 0,
					ok: 1,
				};
			}
			case "aggregate":
				return aggregate(db, cmd);
			case "insert": {
				const coll = collection(db, cmd.insert)!;
				const writeErrors: Doc[] = [];
				let n = 0;
				for (const [index, doc] of (cmd.documents as Doc[]).entries()) {
					try {
						await coll.insert(doc);
						n++;
					} catch (err) {
						writeErrors.push(writeErrorOf(err, index));
						if (cmd.ordered !== false) break;
					}
				}
				return { n, ...(writeErrors.length && { writeErrors }), ok: 1 };
			}
			case "update": {
				const coll = collection(db, cmd.update)!;
				let n = 0;
				let nModified = 0;
				const upserted: Doc[] = [];
				const writeErrors: Doc[] = [];
				for (const [index, statement] of (cmd.updates as Doc[]).entries()) {
					try {
						const result = await coll.update(statement.q, statement.u, {
							multi: !!statement.multi,
							upsert: !!statement.upsert,
						});
						n += result.n;
						nModified += result.nModified;
						if (result.upserted !== undefined) upserted.push({ index, _id: result.upserted });
					} catch (err) {
						writeErrors.push(writeErrorOf(err, index));
						if (cmd.ordered !== false) break;
					}
				}
				return {
					n,
					nModified,
					...(upserted.length && { upserted }),
					...(writeErrors.length && { writeErrors }),
					ok: 1,
				};
			}
			case "delete": {
				const coll = collection(db, cmd.delete, false);
				let n = 0;
				for (const statement of cmd.deletes as Doc[])
					n += coll ? (await coll.remove(statement.q, statement.limit)).n : 0;
				return { n, ok: 1 };
			}
			case "findandmodify":
				return findAndModify(db, cmd);
			default:
				throw new CommandError(`no such command: '${name}'`, 59, "CommandNotFound");
		}
	}

	function writeErrorOf(err: unknown, index: number): Doc {
		if (!(err instanceof CommandError)) throw err;
		return { index, code: err.code, errmsg: err.message, ...err.extra };
	}

	async function findAndModify(db: string, cmd: Doc): Promise<Doc> {
		const coll = collection(db, cmd.findAndModify)!;
		const [target] = await coll.find(cmd.query ?? {}, { sort: cmd.sort, limit: 1 });
		if (cmd.remove) {
			if (target) await coll.remove({ _id: target._id }, 1);
			return { lastErrorObject: { n: target ? 1 : 0 }, value: target ?? null, ok: 1 };
		}
		if (!cmd.update)
			throw new CommandError("Either an update or remove=true must be specified", 9, "FailedToParse");
		if (!target && !cmd.upsert) return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
		const result = target
			? await coll.update({ _id: target._id }, cmd.update)
			: await coll.update(cmd.query ?? {}, cmd.update, { upsert: true });
		const value = cmd.new ? (result.doc ?? null) : (target ?? null);
		return {
			lastErrorObject: {
				n: 1,
				updatedExisting: !!target,
				...(result.upserted !== undefined && { upserted: result.upserted }),
			},
			value: value && cmd.fields && Object.keys(cmd.fields).length ? pick(value, cmd.fields) : value,
			ok: 1,
		};
	}

	/** The pipelines the driver sends for countDocuments: $match, $skip, $limit, then a count. */
	async function aggregate(db: string, cmd: Doc): Promise<Doc> {
		const coll = collection(db, cmd.aggregate, false);
		let filter: Doc = {};
		let skip = 0;
		let limit = 0;
		let output: ((docs: Doc[]) => Doc[]) | undefined;
		for (const stage of cmd.pipeline as Doc[]) {
			const [op] = Object.keys(stage);
			if (op === "$match" && !output) filter = { $and: [filter, stage.$match] };
			else if (op === "$skip" && !output) skip += stage.$skip;
			else if (op === "$limit" && !output) limit = stage.$limit;
			else if (op === "$group" && !output && isCountGroup(stage.$group)) {
				const [field] = Object.keys(stage.$group).filter(k => k !== "_id");
				output = docs => (docs.length ? [{ _id: stage.$group._id, [field]: docs.length }] : []);
			} else if (op === "$count" && !output)
				output = docs => (docs.length ? [{ [stage.$count]: docs.length }] : []);
			else throw unsupported(`the aggregation pipeline ${JSON.stringify(cmd.pipeline)}`);
		}
		const docs = coll ? await coll.find(filter, { skip, limit }) : [];
		return cursorReply(`${db}.${cmd.aggregate}`, output ? output(docs) : docs);
	}

	const handle = (cmd: Doc, connectionId: number) => {
		const result = queue
			.then(() => run(cmd, connectionId))
			.catch((err: unknown) => {
				if (err instanceof CommandError)
					return { ok: 0, errmsg: err.message, code: err.code, codeName: err.codeName, ...err.extra };
				return {
					ok: 0,
					errmsg: `The MongoDB stand-in failed: ${(err as Error)?.message ?? err}`,
					code: 1,
					codeName: "InternalError",
				};
			});
		queue = result;
		return result;
	};

	const server = net.createServer(socket => {
		sockets.add(socket);
		const connectionId = ++connections;
		let buffered = Buffer.alloc(0);
		socket.on("close", () => sockets.delete(socket));
		socket.on("error", () => socket.destroy());
		socket.on("data", chunk => {
			buffered = Buffer.concat([buffered, chunk]);
			while (buffered.length >= 4 && buffered.length >= buffered.readInt32LE(0)) {
				const length = buffered.readInt32LE(0);
				const message = buffered.subarray(0, length);
				buffered = buffered.subarray(length);
				void answer(socket, message, connectionId);
			}
		});
	});

	async function answer(socket: net.Socket, message: Buffer, connectionId: number) {
		const requestId = message.readInt32LE(4);
		const opCode = message.readInt32LE(12);
		if (opCode === OP_MSG) {
			const flags = message.readUInt32LE(16);
			const cmd = parseOpMsg(message, flags);
			const reply = await handle(cmd, connectionId);
			if (!(flags & MORE_TO_COME) && !socket.destroyed) socket.write(opMsg(requestId, reply));
		} else if (opCode === OP_QUERY) {
			let offset = 20;
			while (message[offset] !== 0) offset++;
			offset += 9; // the name's NUL, numberToSkip, numberToReturn
			let query = BSON.deserialize(message.subarray(offset, offset + message.readInt32LE(offset)));
			if (query.$query) query = query.$query;
			const reply = await handle(query, connectionId);
			if (!socket.destroyed) socket.write(opReply(requestId, reply));
		} else {
			socket.destroy(); // legacy or compressed opcodes: never sent by the driver this project uses
		}
	}

	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(port, "127.0.0.1", () => resolve());
	});
	const actualPort = (server.address() as net.AddressInfo).port;
	return {
		uri: `mongodb://127.0.0.1:${actualPort}`,
		port: actualPort,
		commands,
		close: () =>
			new Promise<void>(resolve => {
				for (const socket of sockets) socket.destroy();
				server.close(() => resolve());
			}),
	};
}

function isCountGroup(group: Doc): boolean {
	const fields = Object.keys(group).filter(k => k !== "_id");
	return fields.length === 1 && isDeepStrictEqual(group[fields[0]], { $sum: 1 });
}

function pick(doc: Doc, fields: Doc): Doc {
	const include = Object.entries(fields)
		.filter(([, v]) => v)
		.map(([k]) => k);
	if (include.length === 0) return Object.fromEntries(Object.entries(doc).filter(([k]) => !(k in fields)));
	return Object.fromEntries(
		Object.entries(doc).filter(([k]) => (k === "_id" ? fields._id !== 0 : include.includes(k))),
	);
}

/** The command of an OP_MSG: its body section, with any document sequences added under their names. */
function parseOpMsg(message: Buffer, flags: number): Doc {
	const end = message.length - (flags & CHECKSUM_PRESENT ? 4 : 0);
	let offset = 20;
	let body: Doc = {};
	const sequences: Record<string, Doc[]> = {};
	while (offset < end) {
		const kind = message[offset++];
		if (kind === 0) {
			const size = message.readInt32LE(offset);
			body = BSON.deserialize(message.subarray(offset, offset + size));
			offset += size;
		} else {
			const size = message.readInt32LE(offset);
			const sectionEnd = offset + size;
			let cursor = offset + 4;
			const nameEnd = message.indexOf(0, cursor);
			const name = message.toString("utf8", cursor, nameEnd);
			cursor = nameEnd + 1;
			const docs: Doc[] = [];
			while (cursor < sectionEnd) {
				const docSize = message.readInt32LE(cursor);
				docs.push(BSON.deserialize(message.subarray(cursor, cursor + docSize)));
				cursor += docSize;
			}
			sequences[name] = docs;
			offset = sectionEnd;
		}
	}
	return { ...body, ...sequences };
}

let nextResponseId = 0;

function header(length: number, responseTo: number, opCode: number): Buffer {
	const head = Buffer.alloc(16);
	head.writeInt32LE(length, 0);
	head.writeInt32LE(++nextResponseId, 4);
	head.writeInt32LE(responseTo, 8);
	head.writeInt32LE(opCode, 12);
	return head;
}

function opMsg(responseTo: number, reply: Doc): Buffer {
	const body = BSON.serialize(reply);
	const flags = Buffer.alloc(5); // flagBits 0, then section kind 0
	return Buffer.concat([header(16 + 5 + body.length, responseTo, OP_MSG), flags, body]);
}

function opReply(responseTo: number, reply: Doc): Buffer {
	const body = BSON.serialize(reply);
	const fields = Buffer.alloc(20); // responseFlags, cursorID (8 bytes), startingFrom, numberReturned
	fields.writeInt32LE(1, 16);
	return Buffer.concat([header(16 + 20 + body.length, responseTo, OP_REPLY), fields, body]);
}

if (require.main === module) {
	void startMongoStandIn(Number(process.argv[2] ?? 27017)).then(standIn =>
		console.log(`MongoDB stand-in listening on ${standIn.uri}`),
	);
}
