/**
 * The names of the stack's CloudFormation outputs: a contract with `dropwarden config --stack
 * NAME`, which may import this module (it has no dependencies). Add names, never rename.
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
} as const;
