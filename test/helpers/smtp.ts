/** An SMTP server of the test's own (smtp-server on a free port), keeping every mail it accepts. */
import type { AddressInfo } from "node:net";
import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer } from "smtp-server";

export interface TestSmtpServer {
	port: number;
	url: string;
	/** Mails accepted so far, parsed. */
	received: ParsedMail[];
	/** While set, mails it returns true for are refused with 550. */
	refuse: ((mail: ParsedMail) => boolean) | null;
	close(): Promise<void>;
}

export async function startSmtpServer(): Promise<TestSmtpServer> {
	const state = { received: [] as ParsedMail[], refuse: null as TestSmtpServer["refuse"] };
	const smtp = new SMTPServer({
		// No STARTTLS: nodemailer would upgrade and refuse the server's self-signed certificate.
		disabledCommands: ["STARTTLS"],
		authOptional: true,
		allowInsecureAuth: true,
		logger: false,
		onData(stream, _session, callback) {
			simpleParser(stream).then(mail => {
				if (state.refuse?.(mail))
					return callback(Object.assign(new Error("Mailbox unavailable"), { responseCode: 550 }));
				state.received.push(mail);
				callback();
			}, callback);
		},
	});
	await new Promise<void>(resolve => smtp.listen(0, "127.0.0.1", resolve));
	const { port } = smtp.server.address() as AddressInfo;
	return Object.assign(state, {
		port,
		url: `smtp://127.0.0.1:${port}`,
		close: () => new Promise<void>(resolve => smtp.close(resolve)),
	});
}
