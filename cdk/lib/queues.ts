/**
 * The four message queues of DESIGN §3, each with a dead-letter queue: every one has a consumer
 * that can fail (the stager, the upstream service reading results and events, the host agent).
 */
import { Duration } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface QueuesProps {
  /** The stager function's timeout: the staging queue hides a message for 6x this. */
  stagerTimeout: Duration;
  stagingMaxReceiveCount: number;
}

export interface QueueWithDlq {
  queue: Queue;
  dlq: Queue;
}

const RETENTION = Duration.days(14);
const MAX_RECEIVE_COUNT = 5;

export class Queues extends Construct {
  readonly staging: QueueWithDlq;
  readonly results: QueueWithDlq;
  readonly start: QueueWithDlq;
  readonly events: QueueWithDlq;

  constructor(scope: Construct, id: string, props: QueuesProps) {
    super(scope, id);
    // AWS's rule for Lambda event sources: at least 6x the function timeout, so that retries of
    // throttled invocations do not make the message visible again while it is still being staged.
    this.staging = this.pair('Staging', Duration.seconds(props.stagerTimeout.toSeconds() * 6), props.stagingMaxReceiveCount);
    this.results = this.pair('Results', Duration.seconds(60), MAX_RECEIVE_COUNT);
    // Long enough for the agent to fetch a droplet, start it and pass the health check.
    this.start = this.pair('Start', Duration.minutes(5), MAX_RECEIVE_COUNT);
    this.events = this.pair('Events', Duration.seconds(60), MAX_RECEIVE_COUNT);
  }

  private pair(id: string, visibilityTimeout: Duration, maxReceiveCount: number): QueueWithDlq {
    const dlq = new Queue(this, `${id}Dlq`, {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: RETENTION,
    });
    const queue = new Queue(this, id, {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: RETENTION,
      visibilityTimeout,
      deadLetterQueue: { queue: dlq, maxReceiveCount },
    });
    return { queue, dlq };
  }
}
