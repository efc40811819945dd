/**
 * Builds the CDK app: the stack, with cdk-nag's AWS Solutions checks as a policy-validation
 * plugin, so a finding that is neither fixed nor acknowledged fails `cdk synth`.
 */
import { App, Validations } from 'aws-cdk-lib';
import type { AppProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readConfig } from './config.ts';
import { DropwardenStack } from './stack.ts';
import type { DropwardenStackProps } from './stack.ts';

export interface DropwardenAppOptions extends AppProps {
  projectRoot: string;
  stagerEntry?: DropwardenStackProps['stagerEntry'];
  builderEntry?: DropwardenStackProps['builderEntry'];
  hostDockerfile?: DropwardenStackProps['hostDockerfile'];
}

export function createApp(options: DropwardenAppOptions): { app: App; stack: DropwardenStack } {
  const { projectRoot, stagerEntry, builderEntry, hostDockerfile, ...appProps } = options;
  const app = new App(appProps);
  const config = readConfig(app.node);
  const stack = new DropwardenStack(app, config.stackName, {
    config,
    projectRoot,
    stagerEntry,
    builderEntry,
    hostDockerfile,
    description: 'dropwarden: stager (Lambda) and warden container hosts (ECS on EC2)',
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
