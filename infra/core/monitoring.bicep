// Log Analytics workspace + workspace-based Application Insights.
//
// Local (instrumentation-key) authentication is disabled on both: telemetry is only
// accepted from a Microsoft Entra identity holding Monitoring Metrics Publisher on the
// component (the app's managed identity, see app/rbac.bicep), which the app presents
// through the APPLICATIONINSIGHTS_AUTHENTICATION_STRING setting. The instrumentation key
// inside the connection string is then only an address, not a credential.

param logAnalyticsName string
param appInsightsName string
param location string
param tags object = {}

@description('Days the workspace keeps data.')
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

output logAnalyticsWorkspaceId string = logAnalytics.id
output appInsightsName string = appInsights.name
output appInsightsId string = appInsights.id
