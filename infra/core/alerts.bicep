// Alert rules on the app's telemetry (Application Insights, log search alerts).
//
// Each rule runs one query from infra/alerts/ (one .kql file each; the same text is in
// docs/operations.md, "Alerts", with what to do) and fires when the query returns a row.
// They use the telemetry the app sends with OpenTelemetry (core/adapters/telemetry.py):
//   - poison-messages: messages in sync-jobs-poison, writes-poison or outbound-poison
//     (the sync timer logs the depth of each poison queue on every tick);
//   - reconnect-rising: more users needing to reconnect than usual;
//   - sync-failure-rate: too many failed sync jobs;
//   - notification-failures: Graph change notifications or subscriptions failing.
// Fired alerts go to the action group when an address is given (alertEmail), and are
// listed in the portal (Monitor > Alerts) either way.

param namePrefix string
param location string
param tags object = {}

@description('Resource id of the Application Insights component the queries run on.')
param appInsightsId string

@description('E-mail address that receives fired alerts; empty: no action group (alerts show in the portal only).')
param alertEmail string = ''

var alerts = [
  {
    name: 'poison-messages'
    displayName: 'Outlook Sync: messages in a poison queue'
    description: 'A queue message failed every retry and waits in a -poison queue. Runbook: docs/operations.md, section 6 (outlook-sync poison list / replay).'
    severity: 2
    frequency: 'PT15M'
    window: 'PT1H'
    query: loadTextContent('../alerts/poison-messages.kql')
  }
  {
    name: 'reconnect-rising'
    displayName: 'Outlook Sync: users needing to reconnect is rising'
    description: 'More users than usual lost their Outlook connection in the last hour. Runbook: docs/operations.md, section 5.'
    severity: 2
    frequency: 'PT1H'
    window: 'P2D'
    query: loadTextContent('../alerts/reconnect-rising.kql')
  }
  {
    name: 'sync-failure-rate'
    displayName: 'Outlook Sync: sync failure rate'
    description: 'More than a fifth of the sync jobs of the last hour failed. Runbook: docs/operations.md, section 4 (errors and exceptions queries).'
    severity: 1
    frequency: 'PT15M'
    window: 'PT1H'
    query: loadTextContent('../alerts/sync-failure-rate.kql')
  }
  {
    name: 'notification-failures'
    displayName: 'Outlook Sync: change notifications or subscriptions failing'
    description: 'Graph change notifications or subscription upkeep keep failing; affected users fall back to polling. Runbook: docs/operations.md, "Alerts".'
    severity: 3
    frequency: 'PT15M'
    window: 'PT1H'
    query: loadTextContent('../alerts/notification-failures.kql')
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: '${namePrefix}-admins'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'outlooksync'
    enabled: true
    emailReceivers: [
      {
        name: 'admin'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource rules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for alert in alerts: {
    name: '${namePrefix}-${alert.name}'
    location: location
    tags: tags
    properties: {
      displayName: alert.displayName
      description: alert.description
      severity: alert.severity
      enabled: true
      evaluationFrequency: alert.frequency
      // The queries choose their own time ranges; the window only has to cover them.
      windowSize: alert.window
      scopes: [
        appInsightsId
      ]
      criteria: {
        allOf: [
          {
            query: alert.query
            timeAggregation: 'Count'
            operator: 'GreaterThan'
            threshold: 0
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      autoMitigate: true
      actions: {
        actionGroups: empty(alertEmail) ? [] : [
          actionGroup.id
        ]
      }
    }
  }
]

output ruleNames array = [for (alert, i) in alerts: rules[i].name]
