// The one storage account of the app.
//
// It serves two purposes:
//   - host storage (AzureWebJobsStorage): the Functions host keeps its keys, timer
//     schedule monitor and singleton leases in blobs, and Flex Consumption reads the
//     deployment package from the `app-package` container;
//   - the app's data: its tables (Users, AuthFlows, Events, OutlookIndex, Audit, ...)
//     and the queues sync-jobs, writes and outbound (+ their -poison twins).
//
// Shared-key access is turned off: the account accepts only Microsoft Entra tokens
// (the app's managed identity, the admin's sign-in), so there is no account key or
// connection string to leak or rotate. Nothing is public: no anonymous blob access.
//
// Network: with vnetEnabled (main.bicep, the default) public network access is disabled
// and the account is reached only through its private endpoints (infra/network).
//
// The queues are created here because `outbound` is the contract with the Communifire
// backend, which must be able to enqueue before the app has ever run (and read the two
// feeds it is granted, calendar-changes and outbound-results: docs/changes.md), and so that
// "outlook-sync poison list" finds the poison queues before the first failure. The
// tables are the app's own business: it creates any that is missing on first use
// (core/storage.py, Storage.ensure), so their list is not repeated here.

param name string
param location string
param tags object = {}

@description('Replication (see main.bicep).')
param skuName string = 'Standard_GRS'

@description('Blob container Flex Consumption deploys the app package to.')
param deploymentContainerName string

@description('Log Analytics workspace that receives the table and queue access logs.')
param logAnalyticsWorkspaceId string

// Network access (main.bicep passes them from vnetEnabled). The defaults are the VNet
// setup, which is also what infra/check.sh scans: no public endpoint, default deny; the
// app reaches blob, queue and table through private endpoints.
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Disabled'

@allowed([
  'Allow'
  'Deny'
])
param networkDefaultAction string = 'Deny'

// The app settings SyncJobsQueue, WritesQueue and OutboundQueue (app/function.bicep) name these.
var queueNames = [
  'sync-jobs'
  'sync-jobs-poison'
  'writes'
  'writes-poison'
  'outbound'
  'outbound-poison'
  'calendar-changes'
  'outbound-results'
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // With vnetEnabled (the default) the account has no public endpoint at all: the app
    // reaches blob, queue and table through private endpoints. Without it, access is
    // still Entra-only (allowSharedKeyAccess false), over the public endpoint.
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: networkDefaultAction
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        file: {
          enabled: true
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Data-plane access logs (who wrote or deleted what, and with which identity) for the
// app's queues and tables, kept with the app's logs. Reads are left out: the host polls
// the queues all day and those entries would only add cost.
resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'queue-to-log-analytics'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'table-to-log-analytics'
  scope: tableService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

output name string = storage.name
output id string = storage.id
output deploymentContainerName string = deploymentContainer.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
