/**
 * Helpers for acknowledging cdk-nag findings. IAM5 findings name a wildcard resource the way
 * the template writes it, with `<LogicalId>` for a Ref and `<LogicalId.Arn>` for a GetAtt.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { CfnElement } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

function logicalId(construct: IConstruct): string {
  return Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
}

/** `Ref` of an L2 construct's resource, as cdk-nag prints it. */
export function ref(construct: IConstruct): string {
  return `<${logicalId(construct)}>`;
}

/** `Fn::GetAtt [..., 'Arn']` of an L2 construct's resource, as cdk-nag prints it. */
export function arnRef(construct: IConstruct): string {
  return `<${logicalId(construct)}.Arn>`;
}

/** `Fn::GetAtt [..., attribute]` of an L2 construct's resource, as cdk-nag prints it. */
export function attRef(construct: IConstruct, attribute: string): string {
  return `<${logicalId(construct)}.${attribute}>`;
}
