// Role assignments: what the app's managed identity, and optionally the admin who
// deploys, may do. Every role is a data-plane role scoped to one resource (never the
// resource group or subscription), and is the narrowest built-in role that covers what
// the code does.
//
// The app's identity:
//   Storage Blob Data Owner (storage account)
//     The Functions host keeps its function keys, timer schedule monitor and singleton
//     locks in blob containers it creates itself (azure-webjobs-hosts,
//     azure-webjobs-secrets) and takes blob leases; Flex Consumption reads the deployment
//     package with the same identity. The Functions documentation names this role for an
//     identity-based AzureWebJobsStorage; Blob Data Contributor is not enough for the host.
//   Storage Queue Data Contributor (storage account)
//     The queue triggers read and delete messages, the timer and the per-user sync add
//     messages (sync-jobs, writes), the host moves failed messages to <queue>-poison, and
//     both the host and the app create a queue that is missing. Creating a queue is
//     outside Queue Data Message Processor / Message Sender, so Contributor is the
//     narrowest single role.
//   Storage Table Data Contributor (storage account)
//     The app reads, inserts, updates (with ETags) and deletes entities in its tables, and
//     creates the tables on first use. Table Data Reader cannot write; there is no
//     narrower built-in role.
//   Key Vault Secrets User (vault)
//     Read secret values, for the two Key Vault references in the app settings. Cannot
//     list, write or delete. The vault holds only this app's two secrets.
//   Key Vault Crypto User (the TokenEncryptionKek key only)
//     unwrapKey: the app unwraps its token-encryption data keys once per process
//     (envelope encryption). Scoped to that one key, not the vault.
//   Monitoring Metrics Publisher (Application Insights)
//     Send telemetry with an Entra token, required because local auth is disabled.
//
// The Communifire backend (communifirePrincipalId, optional), exactly what it does
// (docs/changes.md, "For the .NET team"):
//   Storage Queue Data Message Sender (the `outbound` queue only): put messages on the
//     one queue it writes to.
//   Storage Queue Data Message Processor (the `calendar-changes` and `outbound-results`
//     queues only): peek, receive and delete the messages of the two feeds it reads.
//   Nothing else: no other queue, no table, nothing at the account's scope.
//
// The admin (principalId, optional):
//   Key Vault Secrets Officer (vault): set and rotate the client secret after deployment.
//   Key Vault Crypto Officer (vault): wrap new data keys (outlook-sync keygen --wrap-with)
//     and rotate the key-encryption key (a new key version, docs/operations.md); the CLI
//     also unwraps the data keys with it to open token caches (rotate-key).
//   Storage Table Data Contributor + Storage Queue Data Contributor (storage account): run
//     the outlook-sync admin CLI against the deployed storage (users, audit, poison
//     replay, enqueue, confirm, rotate-key).

param storageAccountName string
param keyVaultName string

@description('Name of the key-encryption key in the vault (envelope encryption of the token caches).')
param keyEncryptionKeyName string
param appInsightsName string

@description('Principal id of the app\'s user-assigned managed identity.')
param appPrincipalId string

@description('Object id of the admin who deploys; empty: no admin roles.')
param adminPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param adminPrincipalType string = 'User'

@description('Object id of the service principal (or managed identity) the Communifire backend uses: send on the outbound queue, read and delete on calendar-changes and outbound-results; empty: none.')
param communifirePrincipalId string = ''

// Built-in role definition ids (identical in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  keyVaultCryptoUser: '12338af0-0e69-4776-bea7-57ae8d297424'
  keyVaultCryptoOfficer: '14b46e9e-c2b7-41b4-b07b-48a6ebf60603'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
  storageQueueDataMessageProcessor: '8a0f0c08-91a1-4084-bc3d-661d67233fed'
}

var appStorageRoles = [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

var adminStorageRoles = [
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

var hasAdmin = !empty(adminPrincipalId)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource outboundQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: 'outbound'
}

resource changesQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: 'calendar-changes'
}

resource resultsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: 'outbound-results'
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource keyEncryptionKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' existing = {
  parent: vault
  name: keyEncryptionKeyName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// --- the app's managed identity ---------------------------------------------------

resource appStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in appStorageRoles: {
    name: guid(storage.id, appPrincipalId, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource appSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appUnwrap 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyEncryptionKey.id, appPrincipalId, roles.keyVaultCryptoUser)
  scope: keyEncryptionKey
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultCryptoUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// --- the Communifire backend (optional) -------------------------------------------

resource communifireOutbound 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(communifirePrincipalId)) {
  name: guid(outboundQueue.id, communifirePrincipalId, roles.storageQueueDataMessageSender)
  scope: outboundQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageSender)
    principalId: communifirePrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource communifireChanges 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(communifirePrincipalId)) {
  name: guid(changesQueue.id, communifirePrincipalId, roles.storageQueueDataMessageProcessor)
  scope: changesQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageProcessor)
    principalId: communifirePrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource communifireResults 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(communifirePrincipalId)) {
  name: guid(resultsQueue.id, communifirePrincipalId, roles.storageQueueDataMessageProcessor)
  scope: resultsQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageProcessor)
    principalId: communifirePrincipalId
    principalType: 'ServicePrincipal'
  }
}

// --- the admin who deploys (optional) ---------------------------------------------

resource adminSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasAdmin) {
  name: guid(vault.id, adminPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: adminPrincipalId
    principalType: adminPrincipalType
  }
}

resource adminKeys 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasAdmin) {
  name: guid(vault.id, adminPrincipalId, roles.keyVaultCryptoOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultCryptoOfficer)
    principalId: adminPrincipalId
    principalType: adminPrincipalType
  }
}

resource adminStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in (hasAdmin ? adminStorageRoles : []): {
    name: guid(storage.id, adminPrincipalId, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: adminPrincipalId
      principalType: adminPrincipalType
    }
  }
]
