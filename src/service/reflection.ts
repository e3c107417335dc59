import {
  create,
  createRegistry,
  fromBinary,
  toBinary,
  type DescFile,
  type DescMessage,
  type DescService,
  type FileRegistry,
  type MessageInitShape,
  type Registry,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { positiveInteger } from "../core/options.js";

/**
 * ReflectionServiceOptions configures `createReflectionService`.
 */
export interface ReflectionServiceOptions {
  /**
   * The services to describe: `list_services` names them (and the two
   * reflection services), and the files that define them and their imports
   * answer the look-ups. Required, at least one.
   */
  services: readonly DescService[];
  /**
   * More files to answer look-ups from, such as the files of extensions that
   * no service imports. By default, only the services' files and imports.
   */
  registry?: FileRegistry;
  /**
   * A Connect request gate for both reflection services, such as
   * `createClientCertGate({ store })`: who may ask. By default, none (anyone
   * the server lets in), as reflection is in other gRPC servers.
   */
  requestGate?: (context: HandlerContext) => void | Promise<void>;
  /**
   * Asked again before every answer but a stream's first, with the stream's
   * context; what it throws ends the stream. For gates that can decide again
   * on a running call, such as the certificate store service's `recheck`, so
   * that a client removed from its list mid-stream hears no more.
   * By default, none.
   */
  recheck?: (context: HandlerContext) => void | Promise<void>;
  /** Interceptors for both reflection services. By default, none. */
  interceptors?: Interceptor[];
  /**
   * The largest request message, in bytes: a file or symbol name is short.
   * By default, 4096.
   */
  maxRequestBytes?: number;
}

/**
 * ReflectionServiceHandler registers gRPC server reflection on a Connect router.
 */
export interface ReflectionServiceHandler {
  /** Registers `grpc.reflection.v1.ServerReflection` and `grpc.reflection.v1alpha.ServerReflection`. */
  routes(router: ConnectRouter): void;
}

type Answer = MessageInitShape<typeof v1.ServerReflectionResponseSchema>;

/**
 * createReflectionService serves gRPC server reflection (`grpc.reflection.v1`
 * and `v1alpha`) from the generated descriptors of Connect services, so that
 * `buf curl --reflect`, grpcurl and Postman can list and call them without
 * the .proto files.
 *
 * Each stream answers one request at a time, in order (the next request is
 * not read before the answer to the previous one is written), requests are
 * limited to `maxRequestBytes`, and a stream keeps no more state than the set
 * of files it sent. Reflection needs HTTP/2 (it is a bidirectional stream).
 *
 * @example
 * const reflection = createReflectionService({
 *   services: [ElizaService],
 *   requestGate: createClientCertGate({ store }),
 * });
 * connectNodeAdapter({
 *   routes(router) {
 *     router.service(ElizaService, eliza);
 *     reflection.routes(router);
 *   },
 *   contextValues: peerCertificateContextValues,
 * });
 */
export function createReflectionService(options: ReflectionServiceOptions): ReflectionServiceHandler {
  const services = [...(options?.services ?? [])];
  if (services.length === 0 || services.some((s) => s?.kind !== "service")) {
    throw new TypeError("reflection service: options.services must list at least one service descriptor");
  }
  const maxRequestBytes = positiveInteger("reflection service: maxRequestBytes", options.maxRequestBytes, 4096);
  const listed = [...services, v1.ServerReflection, v1alpha.ServerReflection];
  const files = new Map<string, DescFile>();
  const addFile = (file: DescFile): void => {
    if (!files.has(file.proto.name)) {
      files.set(file.proto.name, file);
      file.dependencies.forEach(addFile);
    }
  };
  for (const service of listed) addFile(service.file);
  for (const file of options.registry?.files ?? []) {
    addFile(file);
  }
  const registry = createRegistry(...files.values());
  const names = [...new Set(listed.map((s) => s.typeName))].sort();
  const encoded = new Map<string, Uint8Array>();
  const bytesOf = (file: DescFile): Uint8Array => {
    let bytes = encoded.get(file.proto.name);
    if (bytes === undefined) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      encoded.set(file.proto.name, bytes);
    }
    return bytes;
  };

  // The file asked for, then those of its imports this stream has not sent:
  // a client keeps what it received, and the protocol allows the saving.
  function filesAnswer(file: DescFile, sent: Set<string>): Answer["messageResponse"] {
    const out = [bytesOf(file)];
    sent.add(file.proto.name);
    const visit = (dependency: DescFile): void => {
      if (sent.has(dependency.proto.name)) {
        return;
      }
      sent.add(dependency.proto.name);
      out.push(bytesOf(dependency));
      dependency.dependencies.forEach(visit);
    };
    file.dependencies.forEach(visit);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  }

  function answer(request: v1.ServerReflectionRequest, sent: Set<string>): Answer {
    const notFound = (what: string): Answer["messageResponse"] => ({
      case: "errorResponse",
      value: { errorCode: Code.NotFound, errorMessage: `${what} not found` },
    });
    const question = request.messageRequest;
    let messageResponse: Answer["messageResponse"];
    switch (question.case) {
      case "listServices":
        messageResponse = { case: "listServicesResponse", value: { service: names.map((name) => ({ name })) } };
        break;
      case "fileByFilename": {
        const file = files.get(question.value);
        messageResponse = file === undefined ? notFound(`file ${question.value}`) : filesAnswer(file, sent);
        break;
      }
      case "fileContainingSymbol": {
        const file = fileOfSymbol(registry, files, question.value);
        messageResponse = file === undefined ? notFound(`symbol ${question.value}`) : filesAnswer(file, sent);
        break;
      }
      case "fileContainingExtension": {
        const extendee = registry.getMessage(question.value.containingType);
        const extension =
          extendee === undefined ? undefined : registry.getExtensionFor(extendee, question.value.extensionNumber);
        messageResponse =
          extension === undefined
            ? notFound(`extension ${question.value.extensionNumber} of ${question.value.containingType}`)
            : filesAnswer(extension.file, sent);
        break;
      }
      case "allExtensionNumbersOfType": {
        const extendee = registry.getMessage(question.value);
        messageResponse =
          extendee === undefined
            ? notFound(`message ${question.value}`)
            : {
                case: "allExtensionNumbersResponse",
                value: { baseTypeName: extendee.typeName, extensionNumber: extensionNumbers(registry, extendee) },
              };
        break;
      }
      default:
        messageResponse = {
          case: "errorResponse",
          value: { errorCode: Code.InvalidArgument, errorMessage: "no question in the request" },
        };
    }
    return { validHost: request.host, originalRequest: request, messageResponse };
  }

  const { recheck } = options;
  // The answers of one stream, each after the gate agreed again.
  async function* answers(requests: AsyncIterable<v1.ServerReflectionRequest>, context: HandlerContext) {
    const sent = new Set<string>();
    let first = true;
    for await (const request of requests) {
      if (!first && recheck !== undefined) {
        await recheck(context);
      }
      first = false;
      yield answer(request, sent);
    }
  }

  const handlerOptions = {
    readMaxBytes: maxRequestBytes,
    ...(options.requestGate === undefined ? {} : { requestGate: options.requestGate }),
    ...(options.interceptors === undefined ? {} : { interceptors: options.interceptors }),
  };

  return {
    routes(router) {
      router.service(
        v1.ServerReflection,
        {
          serverReflectionInfo: (requests, context) => answers(requests, context),
        },
        handlerOptions,
      );
      // v1alpha is the same protocol under another name, identical on the
      // wire: its messages are read and written as v1's.
      router.service(
        v1alpha.ServerReflection,
        {
          async *serverReflectionInfo(requests, context) {
            const asV1 = async function* () {
              for await (const request of requests) {
                yield fromBinary(
                  v1.ServerReflectionRequestSchema,
                  toBinary(v1alpha.ServerReflectionRequestSchema, request),
                );
              }
            };
            for await (const response of answers(asV1(), context)) {
              const bytes = toBinary(
                v1.ServerReflectionResponseSchema,
                create(v1.ServerReflectionResponseSchema, response),
              );
              yield fromBinary(v1alpha.ServerReflectionResponseSchema, bytes);
            }
          },
        },
        handlerOptions,
      );
    },
  };
}

// The file that defines a fully-qualified name: a type or service, or a
// member of one (method, field, oneof, enum value), or an enum value at
// package level. A member must exist: "pkg.Message.nope" is not found.
function fileOfSymbol(registry: Registry, files: ReadonlyMap<string, DescFile>, symbol: string): DescFile | undefined {
  const found = registry.get(symbol);
  if (found !== undefined) {
    return found.file;
  }
  const dot = symbol.lastIndexOf(".");
  const scope = dot < 0 ? "" : symbol.slice(0, dot);
  const member = symbol.slice(dot + 1);
  const parent = registry.get(scope);
  switch (parent?.kind) {
    case "service":
      return parent.methods.some((m) => m.name === member) ? parent.file : undefined;
    case "message": {
      const has =
        parent.fields.some((f) => f.name === member) ||
        parent.oneofs.some((o) => o.name === member) ||
        parent.nestedEnums.some((e) => e.values.some((v) => v.name === member));
      return has ? parent.file : undefined;
    }
    case undefined:
      for (const file of files.values()) {
        if (file.proto.package === scope && file.enums.some((e) => e.values.some((v) => v.name === member))) {
          return file;
        }
      }
      return undefined;
    default:
      return undefined;
  }
}

function extensionNumbers(registry: Registry, extendee: DescMessage): number[] {
  const numbers: number[] = [];
  for (const type of registry) {
    if (type.kind === "extension" && type.extendee.typeName === extendee.typeName) {
      numbers.push(type.number);
    }
  }
  return numbers.sort((a, b) => a - b);
}
