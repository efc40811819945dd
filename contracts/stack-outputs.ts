/**
 * The names of the stack's CloudFormation outputs: cdk/lib/outputs.ts publishes them and
 * `dropwarden config --stack NAME` / `hosts --stack NAME` read them (DESIGN §6, §13). Add
 * names, never rename.
 */
export const OUTPUT = {
  region: 'Region',
  stagingQueueUrl: 'StagingQueueUrl',
  stagingDlqUrl: 'StagingDlqUrl',
  resultsQueueUrl: 'ResultsQueueUrl',
  resultsDlqUrl: 'ResultsDlqUrl',
  startQueueUrl: 'StartQueueUrl',
  startDlqUrl: 'StartDlqUrl',
  eventsQueueUrl: 'EventsQueueUrl',
  eventsDlqUrl: 'EventsDlqUrl',
  appsBucketName: 'AppsBucketName',
  dropletsBucketName: 'DropletsBucketName',
  cacheBucketName: 'CacheBucketName',
  stagerFunctionName: 'StagerFunctionName',
  clusterName: 'ClusterName',
  dashboardName: 'DashboardName',
  /** The apps' route template, `https://{app}.<domain>` (or `http://` without a certificate). */
  routeTemplate: 'RouteTemplate',
  routeDomain: 'RouteDomain',
  loadBalancerDnsName: 'LoadBalancerDnsName',
} as const;
