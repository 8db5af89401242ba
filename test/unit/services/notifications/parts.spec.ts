/** How a notification is written and handed over (templates.ts, providers.ts), with no broker. */
import { createProviders, LogEmailProvider, SmtpEmailProvider } from "../../../../services/notifications/providers";
import { formatMoney } from "../../../../services/notifications/templates";

describe("notification parts", () => {
	it("formats integer cents as money", () => {
		expect(formatMoney(1234, "USD")).toBe("$12.34");
		expect(formatMoney(5, "USD")).toBe("$0.05");
		expect(formatMoney(123456789, "EUR")).toBe("1,234,567.89 EUR");
		expect(formatMoney(-250, "USD")).toBe("-$2.50");
	});

	it("logs email without SMTP, one short line with the recipient masked", async () => {
		const lines: string[] = [];
		const logger = { info: (line: string) => lines.push(line) } as any;
		const providers = createProviders({ mailFrom: "shop@moleshop.test", logger });
		expect(providers.email).toBeInstanceOf(LogEmailProvider);
		expect(createProviders({ smtpUrl: "smtp://127.0.0.1:1", mailFrom: "x@y.z", logger }).email).toBeInstanceOf(
			SmtpEmailProvider,
		);

		await providers.email.send({ to: "ada@example.com", subject: "Hello", body: "a long secret body" });
		await providers.sms.send({ to: "+4915112345678", subject: null, body: "short text" });
		expect(lines).toEqual(["email to a***@example.com: Hello", "sms to ***5678: 10 characters"]);
	});
});
