// Outlook Sync for Communifire: everything the function app needs in one Azure subscription.
//
// Scope: the subscription. The template creates (or updates) one resource group and
// deploys every resource into it, which is what the Azure Developer CLI expects
// (`azd up`) and what `az deployment sub create` runs. Deploying at subscription scope
// needs the right to create resource groups and role assignments there (Owner, or
// Contributor + Role Based Access Control Administrator).
//
// What it deploys (docs/architecture.md has the picture):
//   - a user-assigned managed identity: the only credential the app has;
//   - a storage account with shared keys turned off: the Functions host (blobs, leases,
//     the deployment package) and the app's own tables and queues (the queues are
//     created here; the app creates its tables on first use);
//   - a Key Vault (RBAC, soft delete, purge protection) holding OutlookApiClientSecret
//     and TokenEncryptionKey, read by the app through Key Vault references;
//   - Log Analytics + Application Insights with local (key) authentication disabled;
//   - a Flex Consumption (FC1) plan and a Linux function app on Python 3.11;
//   - role assignments: least-privilege data roles for the identity, and optional
//     roles for the person or pipeline that deploys (principalId) and for the
//     Communifire backend, which may only send to the outbound queue and read/delete the
//     calendar-changes and outbound-results queues (nothing on tables).
//
// No connection string, account key or SAS appears anywhere: every client
// authenticates with Microsoft Entra ID.

targetScope = 'subscription'

// ---------------------------------------------------------------------------------
// Deployment
// ---------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the environment (azd: AZURE_ENV_NAME). Used in resource names and tags, e.g. "outlooksync-prod".')
param environmentName string

// Only regions that offer the Flex Consumption plan, so that `azd up` asks for one of
// them and a wrong region fails at once instead of late, at the plan. The list follows
// the Azure Functions Flex Consumption samples; check
// `az functionapp list-flexconsumption-locations -o table` for regions added since.
@minLength(1)
@description('Azure region for every resource; one that offers the Flex Consumption plan.')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create or update. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the person or pipeline that deploys (azd: AZURE_PRINCIPAL_ID). Empty: no admin roles are granted. When set, it may write the two Key Vault secrets and read/write the app tables and queues (for the outlook-sync admin CLI).')
param principalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
@description('Kind of principal behind principalId.')
param principalType string = 'User'

@description('Object id of the service principal or managed identity the Communifire backend uses. Empty: grant it later (docs/deploy.md). It gets Storage Queue Data Message Sender on the outbound queue and Storage Queue Data Message Processor on calendar-changes and outbound-results, nothing else.')
param communifirePrincipalId string = ''

@description('Tags added to every resource.')
param tags object = {}

@description('true (default): a VNet with private endpoints for storage (blob, queue, table), Key Vault and the function app; none of them has a public endpoint. The intranet\'s reverse proxy must reach the app\'s private endpoint (peer its network with this VNet), and deployments and the admin CLI run from a machine in (or peered with) the VNet. false: public endpoints, Entra ID authentication only (an evaluation setup).')
param vnetEnabled bool = true

// ---------------------------------------------------------------------------------
// App settings (SPEC section 2; the names are those of the Communifire admin guide)
// ---------------------------------------------------------------------------------

@description('OutlookApiClientID: Application (client) ID of the Entra app registration. May stay empty until the app is registered; "outlook-sync doctor" reports it.')
param outlookApiClientId string = ''

@secure()
@description('OutlookApiClientSecret: the client secret VALUE (not its Secret ID). Stored in Key Vault; the app setting only holds a Key Vault reference. Empty: the secret is left as it is (set it later with az keyvault secret set).')
param outlookApiClientSecret string = ''

@description('SAMLTenantID: Directory (tenant) ID of the app registration. Empty: the tenant of the subscription you deploy to.')
param samlTenantId string = ''

@description('UseSAMLtenantIDForOutlook: true for a single-tenant app registration (sign-ins from any other tenant are refused); false for a multitenant one (authority "organizations").')
param useSamlTenantIdForOutlook bool = true

@description('OutlookAllowedTenantIDs: comma-separated Directory (tenant) IDs whose users may connect. Required when useSamlTenantIdForOutlook is false (multitenant): without it the app refuses to start and doctor fails. Ignored in single-tenant mode.')
param outlookAllowedTenantIds string = ''

@description('RequireMatchingOutlookAccount: true (default) makes connect refuse a Microsoft account other than the one Communifire expects (account-linking attack, RFC 9700 4.7). false only when Communifire emails differ from sign-in names; then pass the user\'s Entra object id (oid) to connect. doctor warns while it is false.')
param requireMatchingOutlookAccount bool = true

@description('EnableCalendarSync: "Enable calendar sync from 3rd party systems". false: connect is refused with a clear message and no sync runs. Turn on once the app registration and consent are done.')
param enableCalendarSync bool = false

@description('SiteUrl: base URL that serves /oauth2/outlook/callback (the redirect URI is SiteUrl + /oauth2/outlook/callback). Either the intranet, when its reverse proxy forwards that path to the function app, or empty: the function app\'s own https://<host name>.')
param siteUrl string = ''

@description('TokenEncryptionKeyWrapped: one or more comma-separated kid:keyVersion:wrappedKey entries, data keys wrapped by the Key Vault key TokenEncryptionKek (outlook-sync keygen --wrap-with <key URI> prints one). The first encrypts, all decrypt. Not a secret: only Key Vault can unwrap it. Empty at the first deployment (the key does not exist yet); the app reports it as missing until set.')
param tokenEncryptionKeyWrapped string = ''

@secure()
@description('Legacy TokenEncryptionKey (plain keyid:base64url entries), only for a deployment made before envelope encryption while its token caches are re-sealed. Empty: the secret is left as it is.')
param tokenEncryptionKey string = ''

@description('true: keep referencing the legacy TokenEncryptionKey secret in the app settings (during the migration to envelope encryption, docs/operations.md).')
param legacyTokenEncryptionKey bool = false

@description('SyncSchedule: NCRONTAB with six fields (second minute hour day month day-of-week), in UTC, for the timer that queues due users.')
param syncSchedule string = '0 */15 * * * *'

@minValue(1)
@maxValue(1440)
@description('SyncIntervalMinutes: how often one user is synced at most.')
param syncIntervalMinutes int = 15

@description('Graph change notifications (issue 13): true makes NotificationUrl the function app\'s public https URL (or notificationUrl when given), so Outlook changes reach Communifire within seconds; false leaves NotificationUrl empty and users are polled by the timer only.')
param enableNotifications bool = true

@description('NotificationUrl: public https base URL of the function app where Microsoft Graph posts change notifications (/oauth2/outlook/notifications and /oauth2/outlook/lifecycle; both anonymous, Graph sends no key). Empty: the app\'s own https://<host name>. Not SiteUrl: the intranet need not forward these paths.')
param notificationUrl string = ''

@minValue(45)
@maxValue(10080)
@description('SubscriptionMaxMinutes: lifetime asked for a Graph subscription. Graph documents 10080 minutes for Outlook events today and 4230 in older versions; 4230 works with both. Subscriptions are renewed once half of it is gone.')
param subscriptionMaxMinutes int = 4230

@minValue(1)
@maxValue(1440)
@description('SubscribedSyncIntervalMinutes: how often the timer still syncs a user whose notifications work (the safety net); users without working notifications keep syncIntervalMinutes.')
param subscribedSyncIntervalMinutes int = 60

@description('MaxDeleteShare: share (0..1, as text) of a user\'s events one sync may delete before the plan is held for an admin (outlook-sync confirm).')
param maxDeleteShare string = '0.5'

@description('GraphApiBaseUrl: Microsoft Graph endpoint (change only for a national cloud).')
param graphApiBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('AuthorityHost: Microsoft Entra ID sign-in host (change only for a national cloud).')
param authorityHost string = 'https://login.microsoftonline.com'

@description('TlsCaBundle: optional path (inside the deployed package) of extra CA certificates to trust. Empty: the setting is not created.')
param tlsCaBundle string = ''

// ---------------------------------------------------------------------------------
// Sizing and retention
// ---------------------------------------------------------------------------------

@minValue(1)
@maxValue(1000)
@description('Flex Consumption: most instances the app may scale out to (per function group).')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption: memory of one instance, in MB.')
param instanceMemoryMB int = 2048

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
@description('Replication of the storage account that holds every user\'s links and encrypted token cache. Losing it means every user reconnects and every link is lost, so it is geo-redundant by default (available in every region). Standard_GZRS adds zone redundancy where the region has zones.')
param storageSkuName string = 'Standard_GRS'

@minValue(7)
@maxValue(90)
@description('Days a deleted Key Vault (and deleted secret) can be recovered. With purge protection this also blocks re-using the vault name for that long.')
param keyVaultSoftDeleteRetentionDays int = 90

@minValue(30)
@maxValue(730)
@description('E-mail address for the alert rules (poison messages, reconnects rising, sync failure rate, notification failures). Empty: alerts show in the portal only.')
param alertEmail string = ''

@description('Days Log Analytics keeps the app\'s logs.')
param logRetentionDays int = 30

// ---------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------

// Stable per subscription + environment + region, so re-running the deployment updates in place.
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var allTags = union(tags, { 'azd-env-name': environmentName })
var names = {
  resourceGroup: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  identity: 'id-outlooksync-${resourceToken}'
  storage: 'stoutlook${resourceToken}' // 3-24 lower-case letters and digits
  keyVault: 'kv-outlook-${resourceToken}' // 3-24 characters
  logAnalytics: 'log-outlooksync-${resourceToken}'
  appInsights: 'appi-outlooksync-${resourceToken}'
  plan: 'plan-outlooksync-${resourceToken}'
  functionApp: 'func-outlooksync-${resourceToken}'
  vnet: 'vnet-outlooksync-${resourceToken}'
  deploymentContainer: 'app-package'
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: allTags
}

// ---------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: allTags
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    location: location
    tags: allTags
    retentionInDays: logRetentionDays
  }
}

module storage 'core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: allTags
    skuName: storageSkuName
    deploymentContainerName: names.deploymentContainer
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkDefaultAction: vnetEnabled ? 'Deny' : 'Allow'
  }
}

module keyVault 'core/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: allTags
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionDays
    outlookApiClientSecret: outlookApiClientSecret
    tokenEncryptionKey: tokenEncryptionKey
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkDefaultAction: vnetEnabled ? 'Deny' : 'Allow'
  }
}

// --- network (vnetEnabled) ---------------------------------------------------------

module vnet 'network/vnet.bicep' = if (vnetEnabled) {
  name: 'vnet'
  scope: rg
  params: {
    name: names.vnet
    location: location
    tags: allTags
  }
}

// One private endpoint (and private DNS zone) per storage service and for the vault.
var storagePrivateEndpoints = [
  'blob'
  'queue'
  'table'
]

module storageEndpoints 'network/private-endpoint.bicep' = [
  for service in (vnetEnabled ? storagePrivateEndpoints : []): {
    name: 'pe-storage-${service}'
    scope: rg
    params: {
      name: 'pe-${names.storage}-${service}'
      location: location
      tags: allTags
      vnetId: vnet.outputs.id
      subnetId: vnet.outputs.privateEndpointSubnetId
      targetResourceId: storage.outputs.id
      groupId: service
      dnsZoneName: 'privatelink.${service}.${environment().suffixes.storage}'
    }
  }
]

module keyVaultEndpoint 'network/private-endpoint.bicep' = if (vnetEnabled) {
  name: 'pe-keyvault'
  scope: rg
  params: {
    name: 'pe-${names.keyVault}'
    location: location
    tags: allTags
    vnetId: vnet.outputs.id
    subnetId: vnet.outputs.privateEndpointSubnetId
    targetResourceId: keyVault.outputs.id
    groupId: 'vault'
    dnsZoneName: 'privatelink.vaultcore.azure.net'
  }
}

// The app's inbound endpoint: the intranet's reverse proxy forwards the OAuth routes here.
module functionAppEndpoint 'network/private-endpoint.bicep' = if (vnetEnabled) {
  name: 'pe-function'
  scope: rg
  params: {
    name: 'pe-${names.functionApp}'
    location: location
    tags: allTags
    vnetId: vnet.outputs.id
    subnetId: vnet.outputs.privateEndpointSubnetId
    targetResourceId: functionApp.outputs.id
    groupId: 'sites'
    dnsZoneName: 'privatelink.azurewebsites.net'
  }
}

module alerts 'core/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    namePrefix: 'alert-outlooksync-${resourceToken}'
    location: location
    tags: allTags
    appInsightsId: monitoring.outputs.appInsightsId
    alertEmail: alertEmail
  }
}

// Role assignments first: the app starts as soon as it exists, and without its data
// roles the host cannot reach its storage or resolve its Key Vault references.
module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    keyEncryptionKeyName: keyVault.outputs.keyEncryptionKeyName
    appInsightsName: monitoring.outputs.appInsightsName
    appPrincipalId: identity.outputs.principalId
    adminPrincipalId: principalId
    adminPrincipalType: principalType
    communifirePrincipalId: communifirePrincipalId
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  dependsOn: [
    rbac
    storageEndpoints
    keyVaultEndpoint
  ]
  params: {
    planName: names.plan
    functionAppName: names.functionApp
    location: location
    tags: allTags
    identityName: identity.outputs.name
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    outlookApiClientSecretUri: keyVault.outputs.outlookApiClientSecretUri
    tokenEncryptionKeyUri: keyVault.outputs.tokenEncryptionKeyUri
    legacyTokenEncryptionKey: legacyTokenEncryptionKey
    keyEncryptionKeyUri: keyVault.outputs.keyEncryptionKeyUri
    tokenEncryptionKeyWrapped: tokenEncryptionKeyWrapped
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    appSubnetId: vnetEnabled ? vnet.outputs.appSubnetId : ''
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    outlookApiClientId: outlookApiClientId
    samlTenantId: empty(samlTenantId) ? tenant().tenantId : samlTenantId
    useSamlTenantIdForOutlook: useSamlTenantIdForOutlook
    outlookAllowedTenantIds: outlookAllowedTenantIds
    requireMatchingOutlookAccount: requireMatchingOutlookAccount
    enableCalendarSync: enableCalendarSync
    siteUrl: siteUrl
    syncSchedule: syncSchedule
    syncIntervalMinutes: syncIntervalMinutes
    maxDeleteShare: maxDeleteShare
    graphApiBaseUrl: graphApiBaseUrl
    authorityHost: authorityHost
    tlsCaBundle: tlsCaBundle
    enableNotifications: enableNotifications
    notificationUrl: notificationUrl
    subscriptionMaxMinutes: subscriptionMaxMinutes
    subscribedSyncIntervalMinutes: subscribedSyncIntervalMinutes
  }
}

// ---------------------------------------------------------------------------------
// Outputs (azd stores them in the environment: azd env get-values)
// ---------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
// The key that wraps the token-encryption data keys: outlook-sync keygen --wrap-with <this>.
output TOKEN_ENCRYPTION_KEK_URI string = keyVault.outputs.keyEncryptionKeyUri
output VNET_ENABLED bool = vnetEnabled
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint
output AZURE_STORAGE_QUEUE_ENDPOINT string = storage.outputs.queueEndpoint
output AZURE_STORAGE_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
// The value to enter under Authentication > Web > Redirect URIs in the app registration.
output OAUTH_REDIRECT_URI string = functionApp.outputs.redirectUri
// Where Graph sends change notifications (empty when they are turned off).
output GRAPH_NOTIFICATION_URL string = functionApp.outputs.notificationUrl
