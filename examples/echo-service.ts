// The example EchoService that the example servers guard: Echo answers with
// the text and who sent it, the streams echo the text back.
import type { ConnectRouter } from "@connectrpc/connect";
import { clientCertificateKey, type Certificate } from "certgate";
import { EchoService } from "certgate/example";

/**
 * Greeting is how Echo answers: from the text sent and the client
 * certificate that certgate admitted (undefined when no certgate adapter
 * admitted it, such as a report-only refusal).
 */
export type Greeting = (text: string, client: Certificate | undefined) => string;

/**
 * echoRoutes registers EchoService for `connectNodeAdapter({ routes })`.
 * Echo answers with `greet`, by default `TEXT, SUBJECT`; EchoServerStream
 * sends the text `count` times; EchoClientStream answers with the texts
 * joined.
 */
export function echoRoutes(greet: Greeting = (text, client) => `${text}, ${client?.subject ?? "?"}`) {
  return (router: ConnectRouter): void => {
    router.service(EchoService, {
      echo(req, ctx) {
        return { text: greet(req.text, ctx.values.get(clientCertificateKey)) };
      },
      async *echoServerStream(req) {
        for (let i = 0; i < req.count; i++) yield { text: req.text };
      },
      async echoClientStream(reqs) {
        let text = "";
        for await (const r of reqs) text += r.text;
        return { text };
      },
    });
  };
}
