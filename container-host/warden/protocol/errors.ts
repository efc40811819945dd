/** Everything that can go wrong between bytes and messages; each says what failed and what to do. */
export class WardenProtocolError extends Error {
  override name = 'WardenProtocolError';
}

/** A length header over the configured maximum: the stream cannot be trusted, close it. */
export class FrameTooLargeError extends WardenProtocolError {
  override name = 'FrameTooLargeError';
  readonly length: number;
  readonly maxFrameBytes: number;
  /** `header`: the length as the client wrote it (may exceed what a number holds exactly). */
  constructor(length: number, maxFrameBytes: number, header: string = String(length)) {
    super(`frame length ${header} exceeds the maximum of ${maxFrameBytes} bytes ` + '(raise maxFrameBytes on both ends, or send less per request)');
    this.length = length;
    this.maxFrameBytes = maxFrameBytes;
  }
}

/** The bytes are not `<decimal length>\r\n<payload>\r\n`: the stream is out of step, close it. */
export class MalformedFrameError extends WardenProtocolError {
  override name = 'MalformedFrameError';
}

/** A well-framed payload that is not the protobuf message it claims to be. */
export class MessageDecodeError extends WardenProtocolError {
  override name = 'MessageDecodeError';
  readonly messageName: string;
  constructor(messageName: string, reason: string) {
    super(`cannot decode ${messageName}: ${reason}`);
    this.messageName = messageName;
  }
}

/** A message object that cannot be encoded (unknown field, wrong type, missing required field). */
export class MessageEncodeError extends WardenProtocolError {
  override name = 'MessageEncodeError';
  readonly messageName: string;
  constructor(messageName: string, reason: string) {
    super(`cannot encode ${messageName}: ${reason}`);
    this.messageName = messageName;
  }
}

/** A `Message.type` this protocol does not define. */
export class UnknownMessageTypeError extends WardenProtocolError {
  override name = 'UnknownMessageTypeError';
  readonly type: number;
  constructor(type: number) {
    super(`unknown message type ${type} (see the Type numbers in DESIGN §5)`);
    this.type = type;
  }
}
